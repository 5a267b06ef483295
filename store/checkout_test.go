package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/seed"
	"github.com/homegoods/storefront/store"
)

// shop is a store on a fresh seeded catalog whose test products start without stock.
type shop struct {
	t          *testing.T
	s          *store.Store
	pool       *pgxpool.Pool
	products   []*model.Product // active, by sku
	warehouses []string         // by priority
}

func newShop(t *testing.T, opts ...store.Option) *shop {
	t.Helper()
	return newShopIn(t, "", opts...)
}

// newShopIn is newShop in a database of the analytics mode given ("" for the default).
func newShopIn(t *testing.T, analytics string, opts ...store.Option) *shop {
	t.Helper()
	url := dbtest.NewURL(t)
	if analytics != "" {
		url = dbtest.NewURLWith(t, analytics)
	}
	pool := dbtest.Open(t, url, func(c *pgxpool.Config) { c.MaxConns = 32 })
	if _, err := seed.Catalog(context.Background(), pool, seed.Options{Products: 40, Seed: 5}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	sh := &shop{t: t, s: store.New(pool, opts...), pool: pool}
	ids := mustIDs(t, pool, `SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY sku LIMIT 8`)
	for _, id := range ids {
		ps, err := sh.s.ProductsByIDs(context.Background(), []string{id})
		if err != nil || len(ps) != 1 {
			t.Fatalf("product %s: %v", id, err)
		}
		sh.products = append(sh.products, ps[0])
	}
	sh.warehouses = mustIDs(t, pool, `SELECT id::text FROM warehouses ORDER BY priority`)
	sh.exec(`DELETE FROM inventory WHERE product_id = ANY($1::uuid[])`, ids)
	return sh
}

func (sh *shop) exec(sql string, args ...any) {
	sh.t.Helper()
	if _, err := sh.pool.Exec(context.Background(), sql, args...); err != nil {
		sh.t.Fatalf("%s: %v", sql, err)
	}
}

// stock sets product p's quantity in each warehouse, by priority, with nothing reserved.
func (sh *shop) stock(p *model.Product, quantities ...int) {
	sh.t.Helper()
	for i, q := range quantities {
		sh.exec(`INSERT INTO inventory (product_id, warehouse_id, quantity) VALUES ($1, $2, $3)
		         ON CONFLICT (product_id, warehouse_id) DO UPDATE SET quantity = $3, reserved_quantity = 0`,
			p.ID, sh.warehouses[i], q)
	}
}

// levels returns "quantity/reserved" of product p per warehouse, by priority ("-" when the
// warehouse has no row).
func (sh *shop) levels(p *model.Product) string {
	sh.t.Helper()
	inv, err := sh.s.Inventory(context.Background(), []string{p.ID})
	if err != nil {
		sh.t.Fatal(err)
	}
	out := make([]string, len(sh.warehouses))
	for i, w := range sh.warehouses {
		out[i] = "-"
		for _, l := range inv[p.ID] {
			if l.Warehouse.ID == w {
				out[i] = fmt.Sprintf("%d/%d", l.Quantity, l.Reserved)
			}
		}
	}
	return strings.Join(out, " ")
}

func line(p *model.Product, q int) model.CartLineInput {
	return model.CartLineInput{ProductID: p.ID, Quantity: q}
}

// cart returns the id of a new guest cart holding lines.
func (sh *shop) cart(lines ...model.CartLineInput) string {
	sh.t.Helper()
	c, err := sh.s.CreateCart(context.Background(), "")
	if err != nil {
		sh.t.Fatal(err)
	}
	if len(lines) > 0 {
		if _, err := sh.s.AddCartLines(context.Background(), c.ID, lines); err != nil {
			sh.t.Fatal(err)
		}
	}
	return c.ID
}

func (sh *shop) checkout(cartID, key string) (*model.Order, error) {
	return sh.s.Checkout(context.Background(), "", model.CheckoutInput{CartID: cartID, IdempotencyKey: key,
		Email: "buyer@example.com", ShippingAddress: json.RawMessage(`{"city":"Lyon"}`)})
}

func (sh *shop) mustCheckout(cartID, key string) *model.Order {
	sh.t.Helper()
	o, err := sh.checkout(cartID, key)
	if err != nil {
		sh.t.Fatalf("checkout: %v", err)
	}
	return o
}

// allocations formats an order's allocations as "line: warehouse index x quantity...".
func (sh *shop) allocations(o *model.Order) string {
	var out []string
	for _, l := range o.Lines {
		for _, a := range l.Allocations {
			out = append(out, fmt.Sprintf("%s:w%dx%d", sh.name(l.ProductID), sh.warehouseIndex(a.WarehouseID), a.Quantity))
		}
	}
	return strings.Join(out, " ")
}

func (sh *shop) name(productID string) string {
	for i, p := range sh.products {
		if p.ID == productID {
			return fmt.Sprintf("p%d", i)
		}
	}
	return productID
}

func (sh *shop) warehouseIndex(id string) int {
	for i, w := range sh.warehouses {
		if w == id {
			return i
		}
	}
	return -1
}

func (sh *shop) count(sql string, args ...any) int {
	sh.t.Helper()
	return mustCount(sh.t, sh.pool, sql, args...)
}

// race runs n calls of f at once, released together, and waits for them.
func race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

// sameID runs n calls of f at once and fails t unless they all succeed with the same id.
func sameID(t *testing.T, what string, n int, f func() (string, error)) string {
	t.Helper()
	ids, errs := make([]string, n), make([]error, n)
	race(n, func(i int) { ids[i], errs[i] = f() })
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("%s %d: got %q, %v; want %s like the first", what, i, ids[i], errs[i], ids[0])
		}
	}
	return ids[0]
}

// twoStocked returns a shop whose first two products have 5 units in the first warehouse.
func twoStocked(t *testing.T) (*shop, *model.Product, *model.Product) {
	sh := newShop(t)
	sh.stock(sh.products[0], 5)
	sh.stock(sh.products[1], 5)
	return sh, sh.products[0], sh.products[1]
}

// Hundreds of concurrent checkouts of one product spread over warehouses sell exactly the
// stock: never more, and every refusal is a real shortage.
func TestCheckoutNeverOversells(t *testing.T) {
	sh := newShop(t)
	const n, rounds = 200, 5
	for round := range rounds {
		p := sh.products[round]
		stock := []int{20 + round, 15, 15 - round}
		k := stock[0] + stock[1] + stock[2]
		sh.stock(p, stock...)
		carts, qty := make([]string, n), make([]int, n)
		for i := range n {
			qty[i] = 1 + min(1, i%4/3) // every fourth asks for 2
			carts[i] = sh.cart(line(p, qty[i]))
		}
		errs := make([]error, n)
		race(n, func(i int) { _, errs[i] = sh.checkout(carts[i], fmt.Sprintf("r%d-%d", round, i)) })

		sold, placed := 0, 0
		for i, err := range errs {
			if err == nil {
				sold += qty[i]
				placed++
				continue
			}
			if model.ErrorCodeOf(err) != model.CodeOutOfStock {
				t.Fatalf("round %d checkout %d: got %v; want success or OUT_OF_STOCK", round, i, err)
			}
		}
		// Every checkout of a single unit that failed proves none was left, so sold == k.
		if sold != k {
			t.Errorf("round %d: sold %d units; want exactly the %d in stock", round, sold, k)
		}
		reserved := sh.count(`SELECT sum(reserved_quantity) FROM inventory WHERE product_id = $1`, p.ID)
		allocated := sh.count(`SELECT coalesce(sum(a.quantity), 0) FROM order_allocations a JOIN order_lines l ON l.id = a.order_line_id WHERE l.product_id = $1`, p.ID)
		placedLines := sh.count(`SELECT count(*) FROM order_lines WHERE product_id = $1`, p.ID)
		if reserved != k || allocated != k || placedLines != placed {
			t.Errorf("round %d: reserved %d, allocated %d, %d orders; want %d, %d, %d", round, reserved, allocated, placedLines, k, k, placed)
		}
		if got, want := sh.levels(p), fmt.Sprintf("%d/%d %d/%d %d/%d -", stock[0], stock[0], stock[1], stock[1], stock[2], stock[2]); got != want {
			t.Errorf("round %d: stock %s; want %s", round, got, want)
		}
	}
	if n := sh.count(`SELECT count(*) FROM inventory WHERE quantity < 0 OR reserved_quantity < 0 OR reserved_quantity > quantity`); n != 0 {
		t.Errorf("%d inventory rows out of bounds; want 0", n)
	}
}

// Carts holding the same products, added in opposite orders, check out concurrently without
// a deadlock reaching anyone.
func TestCheckoutOppositeOrdersDoNotDeadlock(t *testing.T) {
	sh := newShop(t)
	a, b, c := sh.products[0], sh.products[1], sh.products[2]
	for _, p := range []*model.Product{a, b, c} {
		sh.stock(p, 100, 100, 100)
	}
	const pairs = 100
	carts := make([]string, 2*pairs)
	for i := range pairs {
		carts[2*i] = sh.cart(line(a, 1), line(b, 1), line(c, 1))
		carts[2*i+1] = sh.cart(line(c, 1), line(b, 1), line(a, 1))
	}
	errs := make([]error, len(carts))
	race(len(carts), func(i int) { _, errs[i] = sh.checkout(carts[i], fmt.Sprintf("k%d", i)) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("checkout %d: got %v; want success", i, err)
		}
	}
	for _, p := range []*model.Product{a, b, c} {
		if got := sh.count(`SELECT sum(reserved_quantity) FROM inventory WHERE product_id = $1`, p.ID); got != 2*pairs {
			t.Errorf("%s reserved %d; want %d", p.SKU, got, 2*pairs)
		}
	}
}

func TestCheckoutIsIdempotent(t *testing.T) {
	sh := newShop(t)
	p := sh.products[0]
	sh.stock(p, 10)
	cart := sh.cart(line(p, 3))
	first := sh.mustCheckout(cart, "same")
	again := sh.mustCheckout(cart, "same")
	if again.ID != first.ID || sh.levels(p) != "10/3 - - -" {
		t.Errorf("retry: got order %s and stock %s; want %s and 10/3", again.ID, sh.levels(p), first.ID)
	}

	// Twenty identical requests at once place one order.
	cart = sh.cart(line(p, 2))
	sameID(t, "twin", 20, func() (string, error) {
		o, err := sh.checkout(cart, "twins")
		if err != nil {
			return "", err
		}
		return o.ID, nil
	})
	if n := sh.count(`SELECT count(*) FROM orders`); n != 2 || sh.levels(p) != "10/5 - - -" {
		t.Errorf("after twins: %d orders, stock %s; want 2 and 10/5", n, sh.levels(p))
	}

	// The same key on another cart: see TestIdempotencyKeysAreScoped.
}

// customerCart returns the id of a new cart of customer holding lines.
func (sh *shop) customerCart(customer string, lines ...model.CartLineInput) string {
	sh.t.Helper()
	c, err := sh.s.CreateCart(context.Background(), customer)
	if err != nil {
		sh.t.Fatal(err)
	}
	if _, err := sh.s.AddCartLines(context.Background(), c.ID, lines); err != nil {
		sh.t.Fatal(err)
	}
	return c.ID
}

func TestCheckoutRevalidatesPrices(t *testing.T) {
	sh, p, q := twoStocked(t)
	ctx := context.Background()
	cart := sh.cart(line(p, 2), line(q, 1))
	newPrice := p.Price.Amount + 150
	if _, err := sh.s.UpdateProduct(ctx, p.ID, model.UpdateProductInput{Price: &newPrice}); err != nil {
		t.Fatal(err)
	}
	total := 2*newPrice + q.Price.Amount
	outbox := sh.count(`SELECT count(*) FROM outbox`)

	_, err := sh.checkout(cart, "k1")
	wantCode(t, err, model.CodeConflict, "expectedTotal")
	if !strings.Contains(err.Error(), "new total is "+total.String()) {
		t.Errorf("refusal: got %q; want it to give the new total %s", err, total)
	}
	stale := total - 1
	_, err = sh.s.Checkout(ctx, "", model.CheckoutInput{CartID: cart, IdempotencyKey: "k2", Email: "a@b.c", ExpectedTotal: &stale})
	wantCode(t, err, model.CodeConflict, "expectedTotal")
	if n := sh.count(`SELECT count(*) FROM outbox`); n != outbox || sh.levels(p) != "5/0 - - -" {
		t.Errorf("refused checkouts wrote %d outbox rows and left stock %s; want none and 5/0", n-outbox, sh.levels(p))
	}

	o, err := sh.s.Checkout(ctx, "", model.CheckoutInput{CartID: cart, IdempotencyKey: "k3", Email: "a@b.c", ExpectedTotal: &total})
	if err != nil {
		t.Fatal(err)
	}
	if o.Total != total || o.Lines[0].UnitPrice != newPrice || o.Lines[1].UnitPrice != q.Price.Amount {
		t.Errorf("order: total %s, unit prices %s and %s; want %s, %s and %s", o.Total, o.Lines[0].UnitPrice, o.Lines[1].UnitPrice, total, newPrice, q.Price.Amount)
	}
}

func TestCheckoutRefusals(t *testing.T) {
	sh, p, q := twoStocked(t)
	ctx := context.Background()

	_, err := sh.checkout(sh.cart(), "empty")
	wantCode(t, err, model.CodeBadUserInput, "cartId")
	_, err = sh.checkout("7d0e8a4e-5c1b-4c39-9f49-5d7c1f0f4a11", "unknown")
	wantCode(t, err, model.CodeNotFound, "")
	_, err = sh.checkout(sh.cart(line(p, 1)), "")
	wantCode(t, err, model.CodeBadUserInput, "idempotencyKey")

	done := sh.cart(line(p, 1))
	sh.mustCheckout(done, "first")
	_, err = sh.checkout(done, "second")
	wantCode(t, err, model.CodeConflict, "")

	mine, err := sh.s.CreateCart(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sh.s.AddCartLines(ctx, mine.ID, []model.CartLineInput{line(p, 1)}); err != nil {
		t.Fatal(err)
	}
	_, err = sh.s.Checkout(ctx, "mallory", model.CheckoutInput{CartID: mine.ID, IdempotencyKey: "steal", Email: "m@x.y"})
	wantCode(t, err, model.CodeForbidden, "")

	archived := sh.cart(line(p, 1), line(q, 1))
	if _, err := sh.s.ArchiveProduct(ctx, q.ID); err != nil {
		t.Fatal(err)
	}
	_, err = sh.checkout(archived, "archived")
	wantCode(t, err, model.CodeBadUserInput, "cartId")
	if !strings.Contains(err.Error(), q.Name) {
		t.Errorf("refusal %q does not name %q", err, q.Name)
	}

	// Stock sold meanwhile: OUT_OF_STOCK names the product and what is left, and changes nothing.
	short := sh.cart(line(p, 4))
	sh.exec(`UPDATE inventory SET quantity = 3 WHERE product_id = $1`, p.ID)
	outbox := sh.count(`SELECT count(*) FROM outbox`)
	_, err = sh.checkout(short, "short")
	wantCode(t, err, model.CodeOutOfStock, "")
	if !strings.Contains(err.Error(), "only 2 of "+p.Name) {
		t.Errorf("refusal %q; want it to say only 2 of %s are available", err, p.Name)
	}
	if n := sh.count(`SELECT count(*) FROM outbox`); n != outbox || sh.levels(p) != "3/1 - - -" {
		t.Errorf("refused checkout wrote %d outbox rows, left stock %s; want none and 3/1", n-outbox, sh.levels(p))
	}
	if c, _ := sh.s.CartByID(ctx, short); c.Status != model.CartOpen {
		t.Errorf("refused checkout left the cart %s; want OPEN", c.Status)
	}
}

func TestCheckoutAllocation(t *testing.T) {
	for _, c := range []struct {
		name  string
		stock [][]int // per product, per warehouse by priority
		cart  []int   // quantity per product
		want  string
	}{
		{"first warehouse fills all", [][]int{{5, 5}, {5, 5}}, []int{2, 3}, "p0:w0x2 p1:w0x3"},
		{"one parcel beats priority", [][]int{{1, 5}, {5, 5}}, []int{2, 2}, "p0:w1x2 p1:w1x2"},
		{"one parcel from the third", [][]int{{1, 1, 9}, {0, 3, 3}}, []int{2, 3}, "p0:w2x2 p1:w2x3"},
		{"split by priority", [][]int{{2, 1, 2, 9}}, []int{13}, "p0:w0x2 p0:w1x1 p0:w2x2 p0:w3x8"},
		{"each line its best", [][]int{{3, 0}, {0, 3}}, []int{2, 2}, "p0:w0x2 p1:w1x2"},
		{"lines split apart", [][]int{{1, 2, 0}, {4, 0, 1}}, []int{3, 5}, "p0:w0x1 p0:w1x2 p1:w0x4 p1:w2x1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sh := newShop(t)
			var lines []model.CartLineInput
			for i, q := range c.cart {
				sh.stock(sh.products[i], c.stock[i]...)
				lines = append(lines, line(sh.products[i], q))
			}
			o := sh.mustCheckout(sh.cart(lines...), "k")
			if got := sh.allocations(o); got != c.want {
				t.Errorf("allocations: got %s; want %s", got, c.want)
			}
		})
	}
}

type outboxRow struct {
	Aggregate   string
	AggregateID string
	Kind        string
	Version     int64
	Payload     map[string]any
}

// outboxSince returns the outbox rows after id, in order.
func (sh *shop) outboxSince(id int) []outboxRow {
	sh.t.Helper()
	rows, err := sh.pool.Query(context.Background(),
		`SELECT aggregate, aggregate_id, kind, version, payload FROM outbox WHERE id > $1 ORDER BY id`, id)
	if err != nil {
		sh.t.Fatal(err)
	}
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.Aggregate, &r.AggregateID, &r.Kind, &r.Version, &r.Payload); err != nil {
			sh.t.Fatal(err)
		}
		out = append(out, r)
	}
	if rows.Err() != nil {
		sh.t.Fatal(rows.Err())
	}
	return out
}

func (sh *shop) lastOutboxID() int {
	return sh.count(`SELECT coalesce(max(id), 0) FROM outbox`)
}

// stockEvents formats the stock.changed rows as "product warehouse before->after @version".
func (sh *shop) stockEvents(rows []outboxRow) []string {
	var out []string
	for _, r := range rows {
		if r.Kind == "stock.changed" {
			out = append(out, fmt.Sprintf("%s w%d %v->%v @%d", sh.name(r.AggregateID), sh.warehouseIndex(r.Payload["warehouse_id"].(string)),
				r.Payload["available_before"], r.Payload["available_after"], r.Version))
		}
	}
	slices.Sort(out) // one statement writes them, in no particular order
	return out
}

func TestCheckoutWritesOutbox(t *testing.T) {
	sh := newShop(t)
	p, q := sh.products[0], sh.products[1]
	sh.stock(p, 1, 4)
	sh.stock(q, 6)
	mark := sh.lastOutboxID()
	o := sh.mustCheckout(sh.cart(line(p, 3), line(q, 2)), "k")

	rows := sh.outboxSince(mark)
	var placed []outboxRow
	for _, r := range rows {
		if r.Kind == "order.placed" {
			placed = append(placed, r)
		}
	}
	if len(placed) != 1 || placed[0].Aggregate != "order" || placed[0].AggregateID != o.ID {
		t.Fatalf("order events: got %+v; want one order.placed of %s", placed, o.ID)
	}
	lines := placed[0].Payload["lines"].([]any)
	first := lines[0].(map[string]any)
	if len(lines) != 2 || first["product_id"] != p.ID || first["category_id"] != p.CategoryID ||
		first["quantity"] != 3.0 || first["unit_price_cents"] != float64(p.Price.Amount) ||
		placed[0].Payload["total_cents"] != float64(o.Total) {
		t.Errorf("order.placed payload: got %v; want the lines with product, category, quantity and unit price", placed[0].Payload)
	}
	got := fmt.Sprint(sh.stockEvents(rows))
	want := fmt.Sprint([]string{"p0 w0 1->0 @2", "p0 w1 4->2 @2", "p1 w0 6->4 @2"})
	if got != want {
		t.Errorf("stock events: got %s; want %s", got, want)
	}
}

// An idempotency key belongs to who checks out: two guests' carts may use the same key; a
// customer's key used again on another cart is a CONFLICT.
func TestIdempotencyKeysAreScoped(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	p := sh.products[0]
	sh.stock(p, 100)
	first := sh.mustCheckout(sh.cart(line(p, 1)), "same-key")
	second := sh.mustCheckout(sh.cart(line(p, 1)), "same-key")
	if first.ID == second.ID {
		t.Fatal("two guests' carts with one key got one order; want an order each")
	}
	in := model.CheckoutInput{CartID: sh.customerCart("ann", line(p, 1)), IdempotencyKey: "same-key", Email: "ann@example.com"}
	o, err := sh.s.Checkout(ctx, "ann", in)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := sh.s.Checkout(ctx, "ann", in); err != nil || again.ID != o.ID {
		t.Fatalf("the customer's retry: %v, %v; want the first order", again, err)
	}
	_, err = sh.s.Checkout(ctx, "ann", model.CheckoutInput{CartID: sh.customerCart("ann", line(p, 1)), IdempotencyKey: "same-key", Email: "ann@example.com"})
	wantCode(t, err, model.CodeConflict, "idempotencyKey")
}

// One guest cannot hoard stock: lines and orders are capped, and a guest (by email, or by
// address under another email) has at most two unpaid orders, on a shorter hold.
func TestGuestsCannotHoardStock(t *testing.T) {
	limits := store.CheckoutLimits{LineUnits: 20, OrderUnits: 30, GuestOpenOrders: 2, GuestHold: 10 * time.Minute}
	sh := newShop(t, store.WithCheckoutLimits(limits))
	ctx := context.Background()
	p, q := sh.products[0], sh.products[1]
	sh.stock(p, 1000)
	sh.stock(q, 1000)
	guest := func(email, street string, lines ...model.CartLineInput) (*model.Order, error) {
		address := fmt.Sprintf(`{"name":"G","line1":%q,"city":"Lyon","postalCode":"69001","country":"FR"}`, street)
		return sh.s.Checkout(ctx, "", model.CheckoutInput{CartID: sh.cart(lines...), IdempotencyKey: email + street,
			Email: email, ShippingAddress: json.RawMessage(address)})
	}
	_, err := guest("g@example.com", "1 Rue A", line(p, 999))
	wantCode(t, err, model.CodeBadUserInput, "cartId")
	_, err = guest("g@example.com", "1 Rue A", line(p, 20), line(q, 20))
	wantCode(t, err, model.CodeBadUserInput, "cartId")
	o, err := guest("g@example.com", "1 Rue A", line(p, 20))
	if err != nil {
		t.Fatal(err)
	}
	if hold := o.ExpiresAt.Sub(o.CreatedAt); hold > 10*time.Minute+time.Second {
		t.Errorf("a guest's order holds its stock for %s; want the guest hold, 10m", hold)
	}
	if _, err := guest("G@Example.com", "1 rue A", line(p, 20)); err != nil {
		t.Fatal(err)
	}
	for _, who := range [][2]string{{"g@example.com", "3 Rue C"}, {"other@example.com", " 1  rue a "}} {
		_, err = guest(who[0], who[1], line(p, 1))
		wantCode(t, err, model.CodeRateLimited, "")
	}
	if got := sh.levels(p); got != "1000/40 - - -" {
		t.Errorf("stock of the product: %s; want 1000/40: the guest holds two orders of 20 and no more", got)
	}
	// Signed in, the same person is a customer with the customer's hold.
	if _, err := sh.s.Checkout(ctx, "ann", model.CheckoutInput{CartID: sh.customerCart("ann", line(p, 5)), IdempotencyKey: "ann", Email: "g@example.com"}); err != nil {
		t.Errorf("a customer with the guest's email: %v; want the order", err)
	}
}

// Concurrent checkouts of one guest do not slip past the limit together.
func TestGuestLimitHoldsUnderConcurrency(t *testing.T) {
	sh := newShop(t, store.WithCheckoutLimits(store.CheckoutLimits{GuestOpenOrders: 2}))
	p := sh.products[0]
	sh.stock(p, 100)
	carts := make([]string, 10)
	for i := range carts {
		carts[i] = sh.cart(line(p, 1))
	}
	race(len(carts), func(i int) {
		_, _ = sh.s.Checkout(context.Background(), "", model.CheckoutInput{CartID: carts[i], IdempotencyKey: fmt.Sprint(i),
			Email: "same@example.com", ShippingAddress: json.RawMessage(fmt.Sprintf(`{"line1":"%d Main St"}`, i))})
	})
	if n := sh.count(`SELECT count(*) FROM orders`); n != 2 {
		t.Errorf("%d orders placed by one guest at once; want 2", n)
	}
}
