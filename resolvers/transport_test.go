package resolvers_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/lru"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
)

// exchange is one raw HTTP request and what came back.
type exchange struct {
	status int
	header http.Header
	body   map[string]json.RawMessage
	raw    string
}

// send makes a raw request: method, Accept, Content-Type and body as given.
func send(t *testing.T, url, method, accept, contentType, body string) exchange {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, body, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	ex := exchange{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if err := json.Unmarshal(raw, &ex.body); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, body, raw, err)
	}
	return ex
}

// code is the extensions.code of the first error.
func (e exchange) code() string {
	var errs []gqlError
	_ = json.Unmarshal(e.body["errors"], &errs)
	if len(errs) == 0 {
		return ""
	}
	return errs[0].Extensions.Code
}

const (
	acceptJSON     = "application/json"
	acceptResponse = "application/graphql-response+json"
)

// The GraphQL-over-HTTP specification's status codes: request errors are 200 under
// application/json and 4xx under application/graphql-response+json, never with a data
// entry; bodies that are no GraphQL request are 4xx under both.
func TestHTTPStatusCodesFollowTheSpecification(t *testing.T) {
	a := newAPI(t, 3)
	cases := []struct {
		name, method, body, code string
		json, response           int // status under each Accept
	}{
		{"parse error", "POST", `{"query":"{ products("}`, "GRAPHQL_PARSE_FAILED", 200, 400},
		{"validation error", "POST", `{"query":"{ nope }"}`, "GRAPHQL_VALIDATION_FAILED", 200, 400},
		{"variable coercion", "POST", `{"query":"query($n: Int!) { products(first: $n) { totalCount } }","variables":{"n":"x"}}`, "GRAPHQL_VALIDATION_FAILED", 200, 400},
		{"unknown operation name", "POST", `{"query":"query A { __typename }","operationName":"B"}`, "GRAPHQL_VALIDATION_FAILED", 200, 400},
		{"not JSON", "POST", `{"query": nope`, "BAD_USER_INPUT", 400, 400},
		{"data after the object", "POST", `{"query":"{ __typename }"} {}`, "BAD_USER_INPUT", 400, 400},
		{"batched array", "POST", `[{"query":"{ __typename }"},{"query":"{ __typename }"}]`, "BAD_USER_INPUT", 400, 400},
		{"variables not an object", "POST", `{"query":"{ __typename }","variables":"{}"}`, "BAD_USER_INPUT", 400, 400},
		{"extensions not an object", "POST", `{"query":"{ __typename }","extensions":[1]}`, "BAD_USER_INPUT", 400, 400},
		{"query not a string", "POST", `{"query":7}`, "BAD_USER_INPUT", 400, 400},
		{"no query", "POST", `{"qeury":"{ __typename }"}`, "BAD_USER_INPUT", 400, 400},
		{"subscription without a stream", "POST", `{"query":"subscription { inventoryAlerts { kind } }"}`, "BAD_USER_INPUT", 200, 400},
	}
	for _, c := range cases {
		for _, accept := range []string{acceptJSON, acceptResponse} {
			want := c.json
			if accept == acceptResponse {
				want = c.response
			}
			ex := send(t, a.srv.URL, c.method, accept, "application/json", c.body)
			if ex.status != want || ex.code() != c.code {
				t.Errorf("%s, Accept %s: got %d %s; want %d %s (%s)", c.name, accept, ex.status, ex.code(), want, c.code, ex.raw)
			}
			if _, ok := ex.body["data"]; ok {
				t.Errorf("%s, Accept %s: a request error has a data entry: %s", c.name, accept, ex.raw)
			}
			if got := ex.header.Get("Content-Type"); !strings.HasPrefix(got, accept) {
				t.Errorf("%s: Content-Type %q; want %s", c.name, got, accept)
			}
			if strings.Contains(ex.raw, "nope") && c.code == "BAD_USER_INPUT" {
				t.Errorf("%s: the error quotes the body: %s", c.name, ex.raw)
			}
		}
	}
	if logs := a.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("client mistakes were logged as errors:\n%s", logs)
	}
}

func TestHTTPMethodsAndMediaTypes(t *testing.T) {
	a := newAPI(t, 3)
	mutation := `?query=` + urlEscape(`mutation { createBrand(input: {name: "X"}) { id } }`)
	if ex := send(t, a.srv.URL+mutation, "GET", "", "", ""); ex.status != 405 || ex.header.Get("Allow") != "POST" || ex.code() != "BAD_USER_INPUT" {
		t.Errorf("mutation over GET: got %d Allow %q %s; want 405, Allow: POST", ex.status, ex.header.Get("Allow"), ex.raw)
	}
	if ex := send(t, a.srv.URL, "PUT", "", "application/json", `{"query":"{ __typename }"}`); ex.status != 405 || ex.header.Get("Allow") == "" {
		t.Errorf("PUT: got %d Allow %q; want 405 with Allow", ex.status, ex.header.Get("Allow"))
	}
	if ex := send(t, a.srv.URL, "POST", "", "text/plain", `{"query":"{ __typename }"}`); ex.status != 415 || ex.code() != "BAD_USER_INPUT" {
		t.Errorf("text/plain POST: got %d %s; want 415", ex.status, ex.raw)
	}
	if ex := send(t, a.srv.URL, "POST", "", "", `{"query":"{ __typename }"}`); ex.status/100 != 4 {
		t.Errorf("POST without Content-Type: got %d; want 4xx", ex.status)
	}
	for accept, want := range map[string]string{"": acceptJSON, "*/*": acceptJSON, acceptResponse + ", application/json": acceptResponse} {
		ex := send(t, a.srv.URL+"?query=%7B__typename%7D", "GET", accept, "", "")
		if ex.status != 200 || !strings.HasPrefix(ex.header.Get("Content-Type"), want) || string(ex.body["data"]) != `{"__typename":"Query"}` {
			t.Errorf("GET with Accept %q: got %d %q %s; want 200 %s", accept, ex.status, ex.header.Get("Content-Type"), ex.raw, want)
		}
	}
	// Variables and extensions in a GET are URL-encoded JSON objects.
	get := `?query=` + urlEscape(`query($n: Int) { products(first: $n) { edges { cursor } } }`) + `&variables=` + urlEscape(`{"n":2}`)
	if ex := send(t, a.srv.URL+get, "GET", acceptResponse, "", ""); ex.status != 200 || strings.Count(ex.raw, "cursor") != 2 {
		t.Errorf("GET with variables: got %d %s", ex.status, ex.raw)
	}
	if ex := send(t, a.srv.URL+"?query=%7B__typename%7D&variables=%5B", "GET", "", "", ""); ex.status != 400 || ex.code() != "BAD_USER_INPUT" {
		t.Errorf("GET with malformed variables: got %d %s; want 400 BAD_USER_INPUT", ex.status, ex.raw)
	}
}

// A body over the server's limit is 413, also when it comes chunked (no Content-Length).
func TestChunkedBodyOverTheLimit(t *testing.T) {
	a := newAPI(t, 0)
	srv := httptest.NewServer(http.MaxBytesHandler(a.srv.Config.Handler, 1024))
	t.Cleanup(srv.Close)
	body := `{"query":"{ __typename }","variables":{"pad":"` + strings.Repeat("x", 4096) + `"}}`
	req, _ := http.NewRequest("POST", srv.URL, io.MultiReader(strings.NewReader(body))) // no length: chunked
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 413 || !strings.Contains(string(raw), "BAD_USER_INPUT") || strings.Contains(string(raw), "xxxx") {
		t.Errorf("chunked oversized body: got %d %s; want 413 BAD_USER_INPUT", res.StatusCode, raw)
	}
}

// Values that coercion or PostgreSQL would turn into internal errors are client mistakes,
// refused before anything runs: nothing changes, nothing is logged as an error.
func TestClientMistakesAreNeverInternal(t *testing.T) {
	a := newAPI(t, 3, func(c *resolvers.Config) {
		c.Commerce = c.Catalog.(*store.Store)
		c.Extensions = append(c.Extensions, resolvers.NewPersistedQueries(lru.New[string](100), resolvers.PersistedQueryOptions{}))
	})
	product := a.text(`SELECT id::text FROM products ORDER BY sku LIMIT 1`)
	warehouse := a.text(`SELECT id::text FROM warehouses ORDER BY code LIMIT 1`)
	pid, wid := gid("Product", product), gid("Warehouse", warehouse)
	token := a.merchandiser()
	before := a.count(`SELECT count(*) FROM stock_movements`) + a.count(`SELECT count(*) FROM products`)

	cases := []struct {
		name, query string
		vars        map[string]any
		code        string
	}{
		{"NUL in a search prefix", `{ suggest(prefix: "oa\u0000k") { text } }`, nil, "BAD_USER_INPUT"},
		{"NUL in a variable", `query($p: String!) { suggest(prefix: $p) { text } }`, map[string]any{"p": "oa\x00k"}, "BAD_USER_INPUT"},
		{"NUL in a slug", `{ product(slug: "a\u0000") { id } }`, nil, "BAD_USER_INPUT"},
		{"NUL in a sku", `{ product(sku: "a\u0000") { id } }`, nil, "BAD_USER_INPUT"},
		{"NUL in a cursor", `{ products(first: 1, after: "\u0000") { totalCount } }`, nil, "BAD_USER_INPUT"},
		{"NUL in a filter", `query($f: ProductFilter) { products(filter: $f) { totalCount } }`, map[string]any{"f": map[string]any{"attributes": map[string]any{"material": "o\x00ak"}}}, "BAD_USER_INPUT"},
		{"NUL in a stock reason", `mutation($p: ID!, $w: ID!) { setStock(productId: $p, warehouseId: $w, quantity: 1, reason: "r\u0000") { available } }`, map[string]any{"p": pid, "w": wid}, "BAD_USER_INPUT"},
		{"Int over 32 bits", `mutation($p: ID!, $w: ID!) { setStock(productId: $p, warehouseId: $w, quantity: 2147483648, reason: "count") { available } }`, map[string]any{"p": pid, "w": wid}, "BAD_USER_INPUT"},
		{"Int variable over 32 bits", `mutation($p: ID!, $w: ID!, $n: Int!) { setLowStockThreshold(productId: $p, warehouseId: $w, threshold: $n) { available } }`, map[string]any{"p": pid, "w": wid, "n": int64(1) << 40}, "BAD_USER_INPUT"},
		{"Int beyond 64 bits", `{ products(first: 99999999999999999999) { totalCount } }`, nil, "GRAPHQL_VALIDATION_FAILED"},
		{"attributes not an object", `mutation { createProduct(input: {sku: "X-1", name: "X", categoryId: "gid://storefront/Category/x", price: "1", attributes: "oak"}) { id } }`, nil, "BAD_USER_INPUT"},
		{"a bad Time", `{ topProducts(from: "yesterday", to: "2026-01-01T00:00:00Z") { units } }`, nil, "BAD_USER_INPUT"},
	}
	for _, c := range cases {
		r := a.do(token, c.query, c.vars)
		if len(r.Errors) == 0 {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if got := r.Errors[0].Extensions.Code; got == "INTERNAL" || got == "" || (c.code != "" && got != c.code) {
			t.Errorf("%s: got %s %q; want %s", c.name, got, r.Errors[0].Message, c.code)
		}
	}
	// An APQ hash that is not the query's.
	apq := `{"query":"{ __typename }","extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + strings.Repeat("ab", 32) + `"}}}`
	if ex := send(t, a.srv.URL, "POST", acceptJSON, "application/json", apq); ex.code() != "BAD_USER_INPUT" {
		t.Errorf("APQ hash mismatch: got %d %s; want BAD_USER_INPUT", ex.status, ex.raw)
	}
	if after := a.count(`SELECT count(*) FROM stock_movements`) + a.count(`SELECT count(*) FROM products`); after != before {
		t.Errorf("refused requests changed the database: %d rows before, %d after", before, after)
	}
	if logs := a.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("client mistakes were logged as errors:\n%s", logs)
	}
}

func TestIntrospectionOffIsAValidationError(t *testing.T) {
	a := newAPI(t, 0, func(c *resolvers.Config) { c.Introspection = false })
	for _, q := range []string{`{ __schema { queryType { name } } }`, `{ __type(name: "Product") { name } }`} {
		if code := a.do("", q, nil).code(t); code != "GRAPHQL_VALIDATION_FAILED" {
			t.Errorf("%s: got %s; want GRAPHQL_VALIDATION_FAILED", q, code)
		}
	}
	a.ok("", `{ __typename }`, nil)
}

func urlEscape(s string) string {
	r := strings.NewReplacer("%", "%25", " ", "%20", "{", "%7B", "}", "%7D", "\"", "%22", ":", "%3A", "$", "%24", "!", "%21", "(", "%28", ")", "%29", "&", "%26", "+", "%2B", "#", "%23", ",", "%2C")
	return r.Replace(s)
}

// RATE_LIMITED says when to come back in Retry-After, and is 429 where the media type lets
// the status speak.
func TestRateLimitedCarriesRetryAfter(t *testing.T) {
	limiter, err := cache.NewMemoryRateLimiter(cache.RateLimit{PerSecond: 1, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(t, 0, func(c *resolvers.Config) {
		c.Extensions = append(c.Extensions, resolvers.NewComplexityRateLimit(limiter, resolvers.ClientKey, resolvers.OperationCost, c.Log))
	})
	send(t, a.srv.URL, "POST", acceptJSON, "application/json", `{"query":"{ __typename }"}`)
	for accept, want := range map[string]int{acceptJSON: 200, acceptResponse: 429} {
		ex := send(t, a.srv.URL, "POST", accept, "application/json", `{"query":"{ __typename }"}`)
		if ex.status != want || ex.code() != "RATE_LIMITED" || ex.header.Get("Retry-After") == "" {
			t.Errorf("Accept %s over the budget: got %d %s, Retry-After %q; want %d RATE_LIMITED with Retry-After", accept, ex.status, ex.raw, ex.header.Get("Retry-After"), want)
		}
	}
}
