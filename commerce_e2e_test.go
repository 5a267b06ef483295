package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// shop is a running server on a seeded catalog, with tokens and SQL access for checks.
type shop struct {
	t            testing.TB
	base         string
	merchandiser string
	db           *pgx.Conn
	env          testEnv
}

func newShop(t testing.TB, products int) *shop {
	t.Helper()
	return newShopWith(t, products, nil)
}

// newShopWith is newShop with settings of the server's environment.
func newShopWith(t testing.TB, products int, settings testEnv) *shop {
	t.Helper()
	env := newTestEnv(t)
	env["RATE_LIMIT_PER_SECOND"] = "0" // one test client stands for many customers
	for k, v := range settings {
		env[k] = v
	}
	runCommand(t, env, "seed", "--products", fmt.Sprint(products), "--seed", "6")
	base, _ := startServer(t, env)
	return shopOn(t, env, base)
}

// shopOn is a shop on the server at base, running with env on a seeded database.
func shopOn(t testing.TB, env testEnv, base string) *shop {
	t.Helper()
	db, err := pgx.Connect(context.Background(), env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return &shop{t: t, base: base, merchandiser: strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser")), db: db, env: env}
}

func (s *shop) customer(id string) string {
	s.t.Helper()
	return strings.TrimSpace(runCommand(s.t, testEnv{"JWT_SECRET": "e2e-secret"}, "token", "--role", "customer", "--customer", id))
}

func (s *shop) must(token, query string, vars map[string]any) map[string]any {
	s.t.Helper()
	data, errs := gql(s.t, s.base, token, query, vars)
	if len(errs) > 0 {
		s.t.Fatalf("%s: %v", query, errs)
	}
	return data
}

func (s *shop) count(sql string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.db.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// product returns the global id of an active product whose stock the test sets: units in
// the first warehouse, none elsewhere.
func (s *shop) product(n, units int) string {
	s.t.Helper()
	var id string
	err := s.db.QueryRow(context.Background(), `SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY sku OFFSET $1 LIMIT 1`, n).Scan(&id)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.db.Exec(context.Background(), `UPDATE inventory SET quantity = CASE WHEN warehouse_id = (SELECT id FROM warehouses ORDER BY priority LIMIT 1) THEN $2 ELSE 0 END, reserved_quantity = 0 WHERE product_id = $1`, id, units); err != nil {
		s.t.Fatal(err)
	}
	return "gid://storefront/Product/" + id
}

// guestCart creates a guest cart holding the given quantities and returns its token.
func (s *shop) guestCart(lines map[string]int) string {
	s.t.Helper()
	cart := s.must("", `mutation { createCart { token } }`, nil)["createCart"].(map[string]any)["token"].(string)
	var in []map[string]any
	for p, q := range lines {
		in = append(in, map[string]any{"productId": p, "quantity": q})
	}
	s.must("", `mutation($c: ID!, $l: [CartLineInput!]!) { addCartLines(cartId: $c, lines: $l) { id } }`, map[string]any{"c": cart, "l": in})
	return cart
}

const checkoutMutation = `mutation($c: ID!, $k: String!, $e: String!, $l: String!) { checkout(cartId: $c, idempotencyKey: $k, email: $e,
  shippingAddress: {name: "Ann", line1: $l, city: "Springfield", postalCode: "12345", country: "US"}) { id number status total { amount } } }`

// checkoutVars are the variables of checkoutMutation for cart and key. Each key is another
// guest (email and street): the guests' limit on unpaid orders does not get in the way of
// tests that place many orders.
func checkoutVars(cart, key string) map[string]any {
	h := fnv.New32a()
	h.Write([]byte(key))
	return map[string]any{"c": cart, "k": key, "e": fmt.Sprintf("buyer-%x@example.com", h.Sum32()), "l": fmt.Sprintf("%d Main St", h.Sum32())}
}

// checkout places the order of a cart and returns the order, or the code of its one error.
func (s *shop) checkout(token, cart, key string) (map[string]any, string) {
	data, errs := gql(s.t, s.base, token, checkoutMutation, checkoutVars(cart, key))
	if len(errs) > 0 {
		code, _ := errs[0]["extensions"].(map[string]any)["code"].(string)
		return nil, code
	}
	return data["checkout"].(map[string]any), ""
}

// K units, 200 concurrent checkouts over HTTP released at once: exactly K succeed.
func TestCheckoutNeverOversells(t *testing.T) {
	s := newShop(t, 40)
	for round := range 3 {
		const units, buyers = 30, 200
		product := s.product(round, units)
		carts := make([]string, buyers)
		for i := range carts {
			carts[i] = s.guestCart(map[string]int{product: 1})
		}
		start := make(chan struct{})
		codes := make([]string, buyers)
		var wg sync.WaitGroup
		for i := range carts {
			wg.Go(func() {
				<-start
				_, codes[i] = s.checkout("", carts[i], fmt.Sprintf("round-%d-buyer-%d", round, i))
			})
		}
		close(start)
		wg.Wait()
		got := map[string]int{}
		for _, c := range codes {
			got[c]++
		}
		if got[""] != units || got["OUT_OF_STOCK"] != buyers-units || len(got) != 2 {
			t.Fatalf("round %d: outcomes %v; want %d orders and %d OUT_OF_STOCK, nothing else", round, got, units, buyers-units)
		}
		id := strings.TrimPrefix(product, "gid://storefront/Product/")
		if r := s.count(`SELECT sum(reserved_quantity) FROM inventory WHERE product_id = $1`, id); r != units {
			t.Errorf("round %d: reserved %d; want %d", round, r, units)
		}
		if n := s.count(`SELECT count(*) FROM inventory WHERE available_quantity < 0 OR reserved_quantity > quantity`); n != 0 {
			t.Errorf("round %d: %d inventory rows oversold", round, n)
		}
	}
}

// Carts of two products taken in opposite orders: no deadlock reaches a client.
func TestOppositeCartsDoNotDeadlock(t *testing.T) {
	s := newShop(t, 40)
	a, b := s.product(5, 1000), s.product(6, 1000)
	const pairs = 40
	carts := make([]string, 2*pairs)
	for i := range pairs {
		carts[2*i] = s.guestCart(map[string]int{a: 1, b: 2})
		carts[2*i+1] = s.guestCart(map[string]int{b: 1, a: 2})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for i := range carts {
		wg.Go(func() {
			if _, code := s.checkout("", carts[i], fmt.Sprintf("pair-%d", i)); code != "" {
				mu.Lock()
				failures = append(failures, code)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d checkouts failed (%v); want none", len(failures), failures)
	}
}

func TestRetriedCheckoutReturnsTheFirstOrder(t *testing.T) {
	s := newShop(t, 40)
	cart := s.guestCart(map[string]int{s.product(7, 10): 2})
	first, code := s.checkout("", cart, "same-key")
	if code != "" {
		t.Fatal(code)
	}
	again, code := s.checkout("", cart, "same-key")
	if code != "" || again["id"] != first["id"] {
		t.Errorf("retry: got %v %s; want the first order %v", again, code, first["id"])
	}
	if n := s.count(`SELECT count(*) FROM orders`); n != 1 {
		t.Errorf("orders: got %d; want 1", n)
	}
	// A key is the guest's (the cart's) or the customer's: another guest may use it too,
	// a customer may not use it again on another cart.
	other := s.guestCart(map[string]int{s.product(8, 10): 1})
	if order, code := s.checkout("", other, "same-key"); code != "" || order["id"] == first["id"] {
		t.Errorf("same key, another guest's cart: got %v %q; want an order of its own", order, code)
	}
	ann := s.customer("ann")
	cartOf := func() string {
		created := s.must(ann, `mutation { createCart { cart { id } } }`, nil)["createCart"].(map[string]any)
		id := created["cart"].(map[string]any)["id"].(string)
		s.must(ann, `mutation($c: ID!, $p: ID!) { addCartLines(cartId: $c, lines: [{productId: $p, quantity: 1}]) { id } }`,
			map[string]any{"c": id, "p": s.product(9, 10)})
		return id
	}
	if _, code := s.checkout(ann, cartOf(), "ann-key"); code != "" {
		t.Fatal(code)
	}
	if _, code := s.checkout(ann, cartOf(), "ann-key"); code != "CONFLICT" {
		t.Errorf("a customer's key on another cart: got %q; want CONFLICT", code)
	}
}

// The README's walk-through: a customer fills a cart, checks out; the order is paid and
// fulfilled; an illegal transition is refused.
func TestCartToOrderWalkThrough(t *testing.T) {
	s := newShop(t, 40)
	ann := s.customer("ann")
	product := s.product(9, 5)
	cart := s.must(ann, `mutation { createCart { cart { id } token } }`, nil)["createCart"].(map[string]any)
	if cart["token"] != nil {
		t.Errorf("a customer's cart got a guest token: %v", cart)
	}
	cartID := cart["cart"].(map[string]any)["id"].(string)
	filled := s.must(ann, `mutation($c: ID!, $p: ID!) { addCartLines(cartId: $c, lines: [{productId: $p, quantity: 2}]) {
	    totalQuantity subtotal { amount } lines { quantity available priceChanged } } }`, map[string]any{"c": cartID, "p": product})
	if lines, _ := filled["addCartLines"].(map[string]any); lines == nil || lines["totalQuantity"] != 2.0 {
		t.Fatalf("cart after adding: %v", filled)
	}
	order, code := s.checkout(ann, cartID, "ann-1")
	if code != "" || order["status"] != "PENDING_PAYMENT" {
		t.Fatalf("checkout: %v %s", order, code)
	}
	mine := s.must(ann, `{ myOrders { edges { node { id } } } }`, nil)
	if !strings.Contains(fmt.Sprint(mine), order["id"].(string)) {
		t.Errorf("myOrders: got %v; want the new order", mine)
	}
	for _, step := range []string{"markOrderPaid", "fulfillOrder"} {
		s.must(s.merchandiser, `mutation($id: ID!) { `+step+`(id: $id) { status } }`, map[string]any{"id": order["id"]})
	}
	id := strings.TrimPrefix(product, "gid://storefront/Product/")
	if q := s.count(`SELECT sum(quantity) FROM inventory WHERE product_id = $1`, id); q != 3 {
		t.Errorf("stock after fulfilment: %d; want 5 - 2", q)
	}
	_, errs := gql(t, s.base, s.merchandiser, `mutation($id: ID!) { cancelOrder(id: $id) { status } }`, map[string]any{"id": order["id"]})
	if len(errs) != 1 || errs[0]["extensions"].(map[string]any)["code"] != "CONFLICT" {
		t.Errorf("cancelling a fulfilled order: got %v; want CONFLICT", errs)
	}
}

func TestNobodyReadsAnotherCustomersCartOrOrder(t *testing.T) {
	s := newShop(t, 40)
	ann, bob := s.customer("ann"), s.customer("bob")
	cart := s.must(ann, `mutation { createCart { cart { id } } }`, nil)["createCart"].(map[string]any)["cart"].(map[string]any)["id"].(string)
	s.must(ann, `mutation($c: ID!, $p: ID!) { addCartLines(cartId: $c, lines: [{productId: $p, quantity: 1}]) { id } }`,
		map[string]any{"c": cart, "p": s.product(10, 5)})
	order, code := s.checkout(ann, cart, "ann-2")
	if code != "" {
		t.Fatal(code)
	}
	for who, token := range map[string]string{"bob": bob, "a guest": ""} {
		if data, errs := gql(t, s.base, token, `query($c: ID!) { cart(id: $c) { id } }`, map[string]any{"c": cart}); len(errs) == 0 || data["cart"] != nil {
			t.Errorf("%s reading ann's cart: got %v; want NOT_FOUND", who, data)
		}
		if data, errs := gql(t, s.base, token, `query($o: ID!) { order(id: $o) { id } }`, map[string]any{"o": order["id"]}); len(errs) == 0 || data["order"] != nil {
			t.Errorf("%s reading ann's order: got %v; want NOT_FOUND", who, data)
		}
	}
	_, errs := gql(t, s.base, bob, `{ orders { edges { node { id } } } }`, nil)
	if len(errs) != 1 || errs[0]["extensions"].(map[string]any)["code"] != "FORBIDDEN" {
		t.Errorf("a customer listing all orders: got %v; want FORBIDDEN", errs)
	}
	_, errs = gql(t, s.base, bob, `mutation($p: ID!, $w: ID!) { setStock(productId: $p, warehouseId: $w, quantity: 1, reason: "x") { quantity } }`,
		map[string]any{"p": s.product(11, 1), "w": "gid://storefront/Warehouse/00000000-0000-4000-8000-000000000000"})
	if len(errs) != 1 || errs[0]["extensions"].(map[string]any)["code"] != "FORBIDDEN" {
		t.Errorf("a customer setting stock: got %v; want FORBIDDEN", errs)
	}
}
