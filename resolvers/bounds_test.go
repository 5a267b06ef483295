package resolvers_test

import (
	"strings"
	"testing"

	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
)

// Free text has bounds, countries are ISO 3166-1 codes, and an error about a product the
// caller cannot see does not name it; refused checkouts leave no order behind.
func TestInputBounds(t *testing.T) {
	a := newAPI(t, 3, func(c *resolvers.Config) { c.Commerce = c.Catalog.(*store.Store) })
	draft := a.text(`UPDATE products SET status = 'DRAFT', name = 'Secret Prototype Lamp'
		WHERE id = (SELECT id FROM products ORDER BY sku LIMIT 1) RETURNING id::text`)
	active := a.text(`SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY sku LIMIT 1`)
	warehouse := a.text(`SELECT id::text FROM warehouses ORDER BY code LIMIT 1`)
	a.ok(a.merchandiser(), `mutation($p: ID!, $w: ID!) { setStock(productId: $p, warehouseId: $w, quantity: 50, reason: "count") { available } }`,
		map[string]any{"p": gid("Product", active), "w": gid("Warehouse", warehouse)})
	cart := dig(a.ok("", `mutation { createCart { cart { id } } }`, nil), "createCart", "cart", "id").(string)

	r := a.do("", `mutation($c: ID!, $p: ID!) { addCartLines(cartId: $c, lines: [{productId: $p, quantity: 1}]) { totalQuantity } }`,
		map[string]any{"c": cart, "p": gid("Product", draft)})
	if code := r.code(t); code != "BAD_USER_INPUT" || strings.Contains(r.Errors[0].Message, "Secret") {
		t.Errorf("a draft product in a cart: got %s %q; want BAD_USER_INPUT without its name", code, r.Errors[0].Message)
	}
	a.ok("", `mutation($c: ID!, $p: ID!) { addCartLines(cartId: $c, lines: [{productId: $p, quantity: 1}]) { totalQuantity } }`,
		map[string]any{"c": cart, "p": gid("Product", active)})

	good := map[string]any{"name": "Ann Lee", "line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}
	with := func(k string, v any) map[string]any {
		out := map[string]any{}
		for key, val := range good {
			out[key] = val
		}
		out[k] = v
		return out
	}
	huge := strings.Repeat("x", 100_000)
	cases := []struct {
		name, email string
		address     map[string]any
		path        string
	}{
		{"a 100 KB email", huge + "@example.com", good, "email"},
		{"a 100 KB second line", "ann@example.com", with("line2", huge), "shippingAddress.line2"},
		{"a 100 KB region", "ann@example.com", with("region", huge), "shippingAddress.region"},
		{"a 100 KB name", "ann@example.com", with("name", huge), "shippingAddress.name"},
		{"country XX", "ann@example.com", with("country", "XX"), "shippingAddress.country"},
		{"country UK", "ann@example.com", with("country", "UK"), "shippingAddress.country"},
	}
	for _, c := range cases {
		r := a.do("", `mutation($c: ID!, $e: String!, $a: AddressInput!) { checkout(cartId: $c, idempotencyKey: "k-1", email: $e, shippingAddress: $a) { id } }`,
			map[string]any{"c": cart, "e": c.email, "a": c.address})
		if code := r.code(t); code != "BAD_USER_INPUT" || strings.Join(r.Errors[0].Extensions.ArgumentPath, ".") != c.path {
			t.Errorf("%s: got %s at %v; want BAD_USER_INPUT at %s", c.name, code, r.Errors[0].Extensions.ArgumentPath, c.path)
		}
		if strings.Contains(r.Errors[0].Message, "xxxx") {
			t.Errorf("%s: the error repeats the input", c.name)
		}
	}
	if n := a.count(`SELECT count(*) FROM orders`); n != 0 {
		t.Errorf("refused checkouts left %d orders", n)
	}
	r = a.do(a.merchandiser(), `mutation($p: ID!, $w: ID!, $r: String!) { setStock(productId: $p, warehouseId: $w, quantity: 1, reason: $r) { available } }`,
		map[string]any{"p": gid("Product", active), "w": gid("Warehouse", warehouse), "r": huge})
	if code := r.code(t); code != "BAD_USER_INPUT" {
		t.Errorf("a 100 KB stock reason: got %s; want BAD_USER_INPUT", code)
	}
	a.ok("", `mutation($c: ID!) { checkout(cartId: $c, idempotencyKey: "k-1", email: "ann@example.com", shippingAddress: {name: "Ann Lee", line1: "1 Main St", city: "Springfield", postalCode: "12345", country: "DE"}) { id } }`,
		map[string]any{"c": cart})
}
