package resolvers_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/homegoods/storefront/resolvers"
)

func mustPrice(t *testing.T, query string, vars map[string]any) int {
	t.Helper()
	p, err := resolvers.Price(query, "", vars)
	if err != nil {
		t.Fatalf("price of %s: %v", query, err)
	}
	return p
}

// aliased is n copies of field under aliases a0, a1...
func aliased(n int, field string) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range n {
		fmt.Fprintf(&b, "a%d: %s ", i, field)
	}
	b.WriteString("}")
	return b.String()
}

// Every copy of a field runs, so every copy is charged: aliases, a field repeated as it
// is, the same fragment spread twice.
func TestCostChargesEveryCopy(t *testing.T) {
	const suggest = `suggest(prefix: "aa", first: 100) { text }`
	one := mustPrice(t, "{ "+suggest+" }", nil)
	if one < 850 {
		t.Fatalf("one suggest costs %d; want at least the measured 850", one)
	}
	// The document's own charge grows with its length: compare the fields alone.
	if ten := mustPrice(t, aliased(10, suggest), nil); ten < 10*one-5 {
		t.Errorf("10 aliased suggests cost %d; want 10 x %d", ten, one)
	}
	if twice := mustPrice(t, "{ "+suggest+" "+suggest+" }", nil); twice < 2*one-5 {
		t.Errorf("a suggest repeated cost %d; want 2 x %d", twice, one)
	}
	spread := `{ ...S ...S } fragment S on Query { a: suggest(prefix: "aa") { text } }`
	if got := mustPrice(t, spread, nil); got < 2*mustPrice(t, `{ suggest(prefix: "aa") { text } }`, nil) {
		t.Errorf("a fragment spread twice cost %d; want twice its fields", got)
	}
}

// Lists are charged for what they may return: nodes by its ids, a connection's edges by
// first (its totalCount once), search and suggest by first, with a price of their own
// that plain fields do not have.
func TestCostOfLists(t *testing.T) {
	ids := func(n int) map[string]any {
		l := make([]any, n)
		for i := range l {
			l[i] = fmt.Sprintf("gid://storefront/Product/%d", i)
		}
		return map[string]any{"ids": l}
	}
	const nodes = `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`
	if n10, n100 := mustPrice(t, nodes, ids(10)), mustPrice(t, nodes, ids(100)); n100 < 9*n10 {
		t.Errorf("nodes of 100 ids cost %d, of 10 ids %d; want ten times", n100, n10)
	}
	page := func(first int, fields string) int {
		return mustPrice(t, fmt.Sprintf(`{ products(first: %d) { %s } }`, first, fields), nil)
	}
	edges := "edges { node { id name } }"
	if p10, p100 := page(10, edges), page(100, edges); p100-p10 != 10*(p10-page(1, edges)) {
		t.Errorf("pages of 10 and 100 cost %d and %d; want each edge charged alike", p10, p100)
	}
	if c10, c100 := page(10, "totalCount"), page(100, "totalCount"); c10 != c100 || c10 < 800 {
		t.Errorf("totalCount costs %d with first 10, %d with first 100; want once, at least 800", c10, c100)
	}
	search := mustPrice(t, `{ search(query: "oak", first: 1) { totalCount } }`, nil)
	plain := mustPrice(t, `{ products(first: 1) { edges { node { id } } } }`, nil)
	if search < 1600 || search < 5*plain {
		t.Errorf("a search costs %d, a page %d; want the search at its measured 1600 or more", search, plain)
	}
}

// A document of fragments that spread the next one twice describes 2^40 fields: pricing
// it, checking its depth and its arguments each visit every fragment once, so it is refused
// at once (gqlgen's own complexity walk would not finish).
func TestFragmentBombIsRefused(t *testing.T) {
	a := newAPI(t, 0)
	var doc strings.Builder
	doc.WriteString("query Bomb { ...F0 }\n")
	for i := range 40 {
		fmt.Fprintf(&doc, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	doc.WriteString(`fragment F40 on Query { suggest(prefix: "a") { text } }`)
	if code := a.do("", doc.String(), nil).code(t); code != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Fatalf("fragment bomb: got %s; want COMPLEXITY_LIMIT_EXCEEDED", code)
	}
}

// The attacks of the issue: 2,500 aliased suggests in one request, and nodes with 12,000
// ids. Both are refused before anything runs: the document is longer than the parser
// reads, and even 20 suggests cost more than an operation may; nodes takes 100 ids, like
// first.
func TestCheapLookingAttacksAreRefused(t *testing.T) {
	a := newAPI(t, 3)
	const suggest = `suggest(prefix: "aa", first: 100) { text }`
	r := a.do("", aliased(2500, suggest), nil)
	if code := r.code(t); code != "GRAPHQL_PARSE_FAILED" || !strings.Contains(r.Errors[0].Message, "token limit") {
		t.Errorf("2,500 aliased suggests: got %+v; want GRAPHQL_PARSE_FAILED at the token limit", r.Errors)
	}
	if code := a.do("", aliased(20, suggest), nil).code(t); code != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Errorf("20 aliased suggests: got %s; want COMPLEXITY_LIMIT_EXCEEDED", code)
	}
	if p := mustPrice(t, aliased(5, suggest), nil); p > 10_000 {
		t.Errorf("5 suggests cost %d; want them within the default limit of 10,000", p)
	}
	product := a.text(`SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY sku LIMIT 1`)
	ids := func(n int) map[string]any {
		l := make([]any, n)
		for i := range l {
			l[i] = gid("Product", product)
		}
		return map[string]any{"ids": l}
	}
	const nodes = `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`
	for _, n := range []int{101, 12_000} {
		r := a.do("", nodes, ids(n))
		if code := r.code(t); code != "BAD_USER_INPUT" || strings.Join(r.Errors[0].Extensions.ArgumentPath, ".") != "ids" {
			t.Errorf("nodes of %d ids: got %+v; want BAD_USER_INPUT on ids", n, r.Errors)
		}
	}
	got := a.ok("", nodes, ids(100))["nodes"].([]any)
	if len(got) != 100 || dig(got, 99, "id") != gid("Product", product) {
		t.Errorf("nodes of 100 ids: got %v; want the product 100 times", got)
	}
}

// Ordinary requests cost nothing before parsing; a document too long to keep parsed, or
// variables of thousands of values, are priced by their size before anything parses them.
func TestParsingCost(t *testing.T) {
	ids := make([]any, 12_000)
	for i := range ids {
		ids[i] = "gid://storefront/Product/00000000-0000-0000-0000-000000000000"
	}
	cases := []struct {
		name     string
		params   graphql.RawParams
		min, max int
	}{
		{"a shopper's page", graphql.RawParams{Query: `{ products(first: 20) { edges { node { id name } } } }`}, 0, 0},
		{"a page of ids", graphql.RawParams{Query: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, Variables: map[string]any{"ids": ids[:100]}}, 0, 0},
		{"a megabyte of garbage", graphql.RawParams{Query: strings.Repeat("x", 1<<20)}, 30_000, 35_000},
		{"12,000 ids", graphql.RawParams{Query: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, Variables: map[string]any{"ids": ids}}, 5_000, 7_000},
	}
	for _, c := range cases {
		if got := resolvers.ParsingCost(&c.params); got < c.min || got > c.max {
			t.Errorf("%s: ParsingCost = %d; want %d to %d", c.name, got, c.min, c.max)
		}
	}
}
