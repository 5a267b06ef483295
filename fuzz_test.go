package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzGraphQLRequest sends the real server random documents, variables and bodies, grown
// from real operations, and asserts that a client's input never gets a 5xx or an INTERNAL
// error: every mistake is answered with a typed error. `make test` runs the seeds and the
// corpus in testdata/fuzz; `make fuzz` searches for new inputs.
func FuzzGraphQLRequest(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed.query, seed.variables, seed.merchandiser)
	}
	env := newTestEnv(f)
	env["RATE_LIMIT_PER_SECOND"] = "0"
	env["MAX_BODY_BYTES"] = "65536"
	runCommand(f, env, "migrate")
	runCommand(f, env, "seed", "--products", "20", "--seed", "4")
	token := strings.TrimSpace(runCommand(f, env, "token", "--role", "merchandiser"))
	base, _ := startServer(f, env)

	f.Fuzz(func(t *testing.T, query, variables string, merchandiser bool) {
		// variables go in as raw JSON, so that malformed bodies are tried too.
		q, _ := json.Marshal(query)
		body := `{"query":` + string(q)
		if variables != "" {
			body += `,"variables":` + variables
		}
		body += "}"
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if merchandiser {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 {
			t.Fatalf("status %d for %s: %s", res.StatusCode, body, raw)
		}
		var resp struct {
			Errors []struct {
				Message    string
				Extensions struct{ Code string }
			}
		}
		if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&resp); err != nil {
			t.Fatalf("response to %s is not JSON: %q", body, raw)
		}
		for _, e := range resp.Errors {
			if e.Extensions.Code == "" || e.Extensions.Code == "INTERNAL" {
				t.Fatalf("error %q (code %q) for %s", e.Message, e.Extensions.Code, body)
			}
		}
	})
}

// fuzzSeeds are real operations of the API, as clients send them.
var fuzzSeeds = []struct {
	query, variables string
	merchandiser     bool
}{
	{`{ __typename }`, ``, false},
	{`query Browse($category: ID) { products(first: 20, sort: PRICE_ASC, filter: {categoryId: $category, attributes: {material: "oak"}, maxPrice: "1500"}) { totalCount edges { cursor node { id name price { amount currency } brand { name } category { name ancestors { name } } availability { inStock available } } } pageInfo { hasNextPage endCursor } } }`, `{"category":null}`, false},
	{`query Tree { categories { name productCount children { name slug productCount } } }`, ``, false},
	{`query Page($after: String) { products(first: 5, after: $after, sort: POPULARITY) { edges { cursor node { sku slug } } } }`, `{"after":"bm90LWEtY3Vyc29y"}`, false},
	{`query One($sku: String) { product(sku: $sku) { id name attributes inventory { available } } }`, `{"sku":"SKU-1"}`, true},
	{`mutation NewBrand($name: String!) { createBrand(input: {name: $name}) { id slug } }`, `{"name":"Fuzz Brand"}`, true},
	{`mutation NewProduct($input: CreateProductInput!) { createProduct(input: $input) { id version } }`, `{"input":{"sku":"FZ-1","name":"Fuzz","price":"9.99","categoryId":"gid://storefront/Category/x","attributes":{"material":"oak"}}}`, true},
	{`mutation Cart { createCart { token cart { id } } }`, ``, false},
	{`mutation Fill($cart: ID!, $lines: [CartLineInput!]!) { addCartLines(cartId: $cart, lines: $lines) { totalQuantity subtotal { amount } } }`, `{"cart":"gid://storefront/Cart/x","lines":[{"productId":"gid://storefront/Product/x","quantity":2}]}`, false},
	{`mutation Pay($cart: ID!, $key: String!, $address: AddressInput!) { checkout(cartId: $cart, idempotencyKey: $key, email: "ann@example.com", shippingAddress: $address) { id status } }`, `{"cart":"x","key":"k-1","address":{"name":"Ann Lee","line1":"1 Main St","city":"Springfield","postalCode":"12345","country":"US"}}`, false},
	{`mutation Stock($p: ID!, $w: ID!, $q: Int!) { setStock(productId: $p, warehouseId: $w, quantity: $q, reason: "count") { available } }`, `{"p":"gid://storefront/Product/x","w":"gid://storefront/Warehouse/x","q":5}`, true},
	{`query Find($q: String) { search(query: $q, first: 10, filter: {attributes: [{key: "material", values: ["oak"]}], price: {min: "100.00", max: "500.00"}}) { totalCount facets { key values { value count } } } suggest(prefix: "wal", first: 5) { text } }`, `{"q":"oak tabel"}`, false},
	{`query Sales { salesAnalytics(from: "2026-10-01T00:00:00Z", to: "2026-11-01T00:00:00Z", bucket: DAY, groupBy: CATEGORY, timeZone: "Europe/Berlin") { totals { revenue orders } } topProducts(from: "2026-11-01T00:00:00Z", to: "2026-11-26T00:00:00Z", by: UNITS, first: 10) { units } }`, ``, true},
	{`subscription { inventoryAlerts { kind } }`, ``, true},
	{`{ products(first: 1) { edges { node { ...P } } } } fragment P on Product { id name }`, `[]`, false},
}
