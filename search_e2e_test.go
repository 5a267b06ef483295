package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/db/dbtest"
)

const searchQuery = `query($q: String, $f: SearchFilter, $sort: SearchSort, $first: Int, $after: String) {
  search(query: $q, filter: $f, sort: $sort, first: $first, after: $after) {
    totalCount backend degraded
    edges { cursor pinned node { id name } highlights { field fragments } }
    facets { key label kind values { value label count selected } }
    priceRange { min max }
    pageInfo { hasNextPage endCursor }
  }
}`

// searchResult runs a search and returns its result, failing t on any error.
func searchResult(t *testing.T, s *shop, token string, vars map[string]any) map[string]any {
	t.Helper()
	return s.must(token, searchQuery, vars)["search"].(map[string]any)
}

// searchCode runs a search that must fail and returns its error code and argument.
func searchCode(t *testing.T, s *shop, vars map[string]any) (code, arg string) {
	t.Helper()
	_, errs := gql(t, s.base, "", searchQuery, vars)
	if len(errs) != 1 {
		t.Fatalf("search %v: got errors %v; want one", vars, errs)
	}
	ext := errs[0]["extensions"].(map[string]any)
	return fmt.Sprint(ext["code"]), fmt.Sprint(ext["argumentPath"])
}

func facet(res map[string]any, key string) map[string]any {
	for _, f := range res["facets"].([]any) {
		if f := f.(map[string]any); f["key"] == key {
			return f
		}
	}
	return nil
}

// Shoppers search by words with facets whose values are global ids with names; the answer
// says PostgreSQL answered; bad input is refused before any engine sees it.
func TestSearchOverGraphQL(t *testing.T) {
	s := newShop(t, 300)
	res := searchResult(t, s, "", map[string]any{"q": "table", "first": 5})
	if res["backend"] != "postgres" || res["degraded"] != false || res["totalCount"].(float64) == 0 {
		t.Fatalf("search table: backend %v, degraded %v, total %v", res["backend"], res["degraded"], res["totalCount"])
	}
	for _, e := range res["edges"].([]any) {
		name := e.(map[string]any)["node"].(map[string]any)["name"].(string)
		if len(e.(map[string]any)["highlights"].([]any)) == 0 {
			t.Errorf("hit %q has no highlights", name)
		}
	}
	category := facet(res, "category")
	first := category["values"].([]any)[0].(map[string]any)
	if !strings.HasPrefix(first["value"].(string), "gid://storefront/Category/") || first["label"] == first["value"] {
		t.Fatalf("category facet value %v: want a global id labelled with its name", first)
	}
	// Selecting it keeps its siblings' counts (disjunctive) and narrows the total.
	narrowed := searchResult(t, s, "", map[string]any{"q": "table", "f": map[string]any{"categoryIds": []string{first["value"].(string)}}})
	if narrowed["totalCount"].(float64) != first["count"].(float64) {
		t.Fatalf("selecting %v gives %v products; want its count", first, narrowed["totalCount"])
	}
	if again := facet(narrowed, "category")["values"].([]any)[0].(map[string]any); again["count"] != first["count"] || again["selected"] != true {
		t.Fatalf("the selected category's own facet: %v; want the same count, selected", again)
	}

	bad := []struct {
		vars      map[string]any
		code, arg string
	}{
		{map[string]any{"q": strings.Repeat("sofa ", 41)}, "BAD_USER_INPUT", "[query]"}, // 205 characters
		{map[string]any{"f": map[string]any{"price": map[string]any{"min": "-1.00"}}}, "BAD_USER_INPUT", "[filter price]"},
		{map[string]any{"f": map[string]any{"attributes": []any{map[string]any{"key": "nonsense", "values": []string{"x"}}}}}, "BAD_USER_INPUT", "[filter attributes]"},
		{map[string]any{"f": map[string]any{"attributes": []any{map[string]any{"key": "color", "values": manyValues(51)}}}}, "BAD_USER_INPUT", "[filter attributes]"},
		{map[string]any{"after": "not-a-cursor"}, "BAD_USER_INPUT", "[after]"},
	}
	for _, b := range bad {
		if code, arg := searchCode(t, s, b.vars); code != b.code || arg != b.arg {
			t.Errorf("search %.200s: got %s at %s; want %s at %s", fmt.Sprint(b.vars), code, arg, b.code, b.arg)
		}
	}
}

func manyValues(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint("v", i)
	}
	return out
}

// Merchandisers' synonyms and pins apply at once, and the zero-result queries reach
// their insights.
func TestSearchRelevanceControls(t *testing.T) {
	s := newShop(t, 300)
	if total := searchResult(t, s, "", map[string]any{"q": "davenport"})["totalCount"]; total != 0.0 {
		t.Fatalf("davenport before the synonym: %v results; want none", total)
	}
	s.must(s.merchandiser, `mutation { putSynonymRule(input: {kind: ONE_WAY, terms: ["davenport"], synonyms: ["sofa"]}) { id } }`, nil)
	sofas := searchResult(t, s, "", map[string]any{"q": "sofa"})["totalCount"].(float64)
	if got := searchResult(t, s, "", map[string]any{"q": "davenport"})["totalCount"].(float64); sofas == 0 || got != sofas {
		t.Fatalf("davenport after davenport => sofa: %v results; want the %v sofas", got, sofas)
	}

	pinned := s.product(7, 5)
	s.must(s.merchandiser, `mutation($p: ID!) { putQueryRule(input: {query: "Sofa", pinnedProductIds: [$p]}) { query } }`, map[string]any{"p": pinned})
	res := searchResult(t, s, "", map[string]any{"q": "sofa", "first": 3})
	top := res["edges"].([]any)[0].(map[string]any)
	if top["node"].(map[string]any)["id"] != pinned || top["pinned"] != true {
		t.Fatalf("first hit for sofa: %v; want the pinned %s", top, pinned)
	}

	insights := `{ searchInsights { zeroResultQueries { query count } topQueries { query count } } }`
	deadline := time.Now().Add(20 * time.Second)
	for {
		zero := s.must(s.merchandiser, insights, nil)["searchInsights"].(map[string]any)["zeroResultQueries"].([]any)
		if len(zero) > 0 && zero[0].(map[string]any)["query"] == "davenport" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zero-result queries: %v; want davenport", zero)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// An unreachable Elasticsearch costs a degraded answer from PostgreSQL, never an error.
func TestSearchFallsBackWhenElasticsearchIsDown(t *testing.T) {
	env := newTestEnv(t)
	env["ELASTICSEARCH_URL"] = "http://127.0.0.1:1" // nothing listens there
	runCommand(t, env, "seed", "--products", "100", "--seed", "6")
	base, _ := startServer(t, env)
	for range 5 { // past the breaker's threshold: open, then answered without trying
		data, errs := gql(t, base, "", searchQuery, map[string]any{"q": "lamp"})
		if len(errs) > 0 {
			t.Fatalf("search with Elasticsearch down: %v", errs)
		}
		res := data["search"].(map[string]any)
		if res["backend"] != "postgres" || res["degraded"] != true || res["totalCount"].(float64) == 0 {
			t.Fatalf("search with Elasticsearch down: backend %v, degraded %v, total %v", res["backend"], res["degraded"], res["totalCount"])
		}
	}
}

// elasticURL returns the search node of make test, or skips (fails under make test).
func elasticURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("TEST_ELASTICSEARCH_URL")
	if url == "" {
		if os.Getenv(dbtest.RequireEnv) == "1" {
			t.Fatal("TEST_ELASTICSEARCH_URL is not set: the search node that `make test` starts is required")
		}
		t.Skip("needs a search node: run `make test`, or set TEST_ELASTICSEARCH_URL")
	}
	return url
}

// Search results are kept in memory, yet a renamed product is found by its new name as soon
// as the change is committed, although the results may be kept for a minute.
func TestCachedSearchesFollowCatalogChanges(t *testing.T) {
	s := newShopWith(t, 200, testEnv{"SEARCH_CACHE_TTL": "1m"})
	if total := searchResult(t, s, "", map[string]any{"q": "zanzibarian quokka"})["totalCount"]; total != 0.0 {
		t.Fatalf("zanzibarian quokka before the rename: %v results; want none", total)
	}
	renameFirstProduct(t, s, "Zanzibarian Quokka Lamp")
	deadline := time.Now().Add(5 * time.Second)
	for searchResult(t, s, "", map[string]any{"q": "zanzibarian quokka"})["totalCount"] != 1.0 {
		if time.Now().After(deadline) {
			t.Fatal("the renamed product is not found 5s after the change: a cached result outlived it")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// renameFirstProduct renames the first product of the default sort and returns its id.
func renameFirstProduct(t *testing.T, s *shop, name string) string {
	t.Helper()
	product := s.must("", `{ products(first: 1) { edges { node { id version } } } }`, nil)["products"].(map[string]any)["edges"].([]any)[0].(map[string]any)["node"].(map[string]any)
	s.must(s.merchandiser, `mutation($id: ID!, $n: String!, $v: Int!) { updateProduct(id: $id, input: {name: $n, expectedVersion: $v}) { id } }`,
		map[string]any{"id": product["id"], "n": name, "v": product["version"]})
	return product["id"].(string)
}

// With Elasticsearch, searches are answered from the index, which the outbox relay keeps
// in step: a renamed product is found by its new name within seconds, although results are
// kept for a minute (they are dropped again once the index shows the change).
func TestSearchFollowsCatalogChangesThroughElasticsearch(t *testing.T) {
	url := elasticURL(t)
	index := fmt.Sprintf("e2e_%d", rand.Uint32())
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, url+"/"+index+"*", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	})
	env := newTestEnv(t)
	env["ELASTICSEARCH_URL"], env["SEARCH_INDEX"] = url, index
	env["RATE_LIMIT_PER_SECOND"] = "0"
	env["SEARCH_CACHE_TTL"] = "1m"
	env["SEARCH_TIMEOUT"] = "5s" // a loaded machine's slow answer must not open the breaker
	runCommand(t, env, "seed", "--products", "200", "--seed", "6")
	base, _ := startServer(t, env)
	s := &shop{t: t, base: base, merchandiser: strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))}
	// The server builds the index at start: on a loaded machine that takes a while.
	deadline := time.Now().Add(2 * time.Minute)
	for res := searchResult(t, s, "", map[string]any{"q": "lamp"}); res["backend"] != "elasticsearch"; res = searchResult(t, s, "", map[string]any{"q": "lamp"}) {
		if time.Now().After(deadline) {
			t.Fatalf("Elasticsearch does not answer 2 minutes after the start: backend %v, degraded %v", res["backend"], res["degraded"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	if total := searchResult(t, s, "", map[string]any{"q": "zanzibarian quokka"})["totalCount"]; total != 0.0 {
		t.Fatalf("zanzibarian quokka before the rename: %v results; want none", total)
	}
	renamed := renameFirstProduct(t, s, "Zanzibarian Quokka Lamp")
	deadline = time.Now().Add(time.Minute)
	for {
		res := searchResult(t, s, "", map[string]any{"q": "zanzibarian quokka"})
		if res["backend"] == "elasticsearch" && res["totalCount"] == 1.0 {
			if id := res["edges"].([]any)[0].(map[string]any)["node"].(map[string]any)["id"]; id != renamed {
				t.Fatalf("found %v; want %v", id, renamed)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renamed product is not found through Elasticsearch: backend %v, total %v", res["backend"], res["totalCount"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
