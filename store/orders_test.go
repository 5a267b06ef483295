package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/store"
)

// placedOrder checks out a new cart of 3 units of the shop's first product.
func placedOrder(t *testing.T, sh *shop, key string) *model.Order {
	t.Helper()
	return sh.mustCheckout(sh.cart(line(sh.products[0], 3)), key)
}

func TestOrderTransitions(t *testing.T) {
	ctx := context.Background()
	type step struct {
		name  string
		do    func(*store.Store, string) (*model.Order, error)
		state model.OrderStatus // after a legal step; "" when the step is illegal
		stock string            // of product 0 afterwards
	}
	pay := func(name string, state model.OrderStatus, stock string) step {
		return step{name, func(s *store.Store, id string) (*model.Order, error) { return s.MarkOrderPaid(ctx, id) }, state, stock}
	}
	fulfil := func(name string, state model.OrderStatus, stock string) step {
		return step{name, func(s *store.Store, id string) (*model.Order, error) { return s.FulfillOrder(ctx, id) }, state, stock}
	}
	cancel := func(name string, state model.OrderStatus, stock string) step {
		return step{name, func(s *store.Store, id string) (*model.Order, error) { return s.CancelOrder(ctx, id) }, state, stock}
	}
	// Product 0 has 5 units in the first warehouse; every order reserves 3 of them.
	for _, path := range [][]step{
		{fulfil("pending→fulfilled", "", "5/3"), pay("pending→paid", model.OrderPaid, "5/3"), pay("paid→paid", "", "5/3"),
			fulfil("paid→fulfilled", model.OrderFulfilled, "2/0"), pay("fulfilled→paid", "", "2/0"),
			cancel("fulfilled→cancelled", "", "2/0"), fulfil("fulfilled→fulfilled", "", "2/0")},
		{cancel("pending→cancelled", model.OrderCancelled, "5/0"), pay("cancelled→paid", "", "5/0"),
			fulfil("cancelled→fulfilled", "", "5/0"), cancel("cancelled→cancelled", "", "5/0")},
		{pay("pending→paid", model.OrderPaid, "5/3"), cancel("paid→cancelled", model.OrderCancelled, "5/0")},
	} {
		sh := newShop(t)
		sh.stock(sh.products[0], 5)
		o := placedOrder(t, sh, "k")
		status := o.Status
		for _, st := range path {
			outbox := sh.lastOutboxID()
			got, err := st.do(sh.s, o.ID)
			if st.state == "" {
				wantCode(t, err, model.CodeConflict, "")
				if n := sh.lastOutboxID(); n != outbox {
					t.Errorf("%s: refused, yet wrote %d outbox rows", st.name, n-outbox)
				}
			} else if err != nil || got.Status != st.state {
				t.Fatalf("%s: got %v, %v; want %s", st.name, got, err, st.state)
			} else {
				status = st.state
			}
			if current, _ := sh.s.Order(ctx, o.ID); current.Status != status || sh.levels(sh.products[0]) != st.stock+" - - -" {
				t.Errorf("%s: order %s, stock %s; want %s, %s", st.name, current.Status, sh.levels(sh.products[0]), status, st.stock)
			}
		}
	}
}

func TestOrderTransitionsWriteOutboxAndMovements(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	p := sh.products[0]
	sh.stock(p, 2, 5)
	fulfilled := placedOrder(t, sh, "f")
	cancelled := placedOrder(t, sh, "c")
	mark := sh.lastOutboxID()
	if _, err := sh.s.MarkOrderPaid(ctx, fulfilled.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.s.FulfillOrder(ctx, fulfilled.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.s.CancelOrder(ctx, cancelled.ID); err != nil {
		t.Fatal(err)
	}
	rows := sh.outboxSince(mark)
	var kinds []string
	for _, r := range rows {
		if r.Aggregate == "order" {
			kinds = append(kinds, r.Kind+"@"+fmt.Sprint(r.Version))
		}
	}
	if want := []string{"order.paid@2", "order.fulfilled@3", "order.cancelled@2"}; !slices.Equal(kinds, want) {
		t.Errorf("order events: got %v; want %v", kinds, want)
	}
	last := rows[len(rows)-1]
	line := last.Payload["lines"].([]any)[0].(map[string]any)
	if last.Kind != "order.cancelled" || last.Payload["reason"] != "cancellation" || line["quantity"] != 3.0 ||
		line["unit_price_cents"] != float64(p.Price.Amount) || line["category_id"] != p.CategoryID {
		t.Errorf("order.cancelled: got %v; want its reason and lines", last.Payload)
	}
	// The first order took 3 from the second warehouse (one parcel), the second 2+1. The
	// fulfilment takes 3 units out of the second warehouse (available stays 1); the
	// cancellation releases 2+1.
	got := fmt.Sprint(sh.stockEvents(rows))
	want := fmt.Sprint([]string{"p0 w0 0->2 @3", "p0 w1 1->1 @4", "p0 w1 1->2 @5"})
	if got != want {
		t.Errorf("stock events: got %s; want %s", got, want)
	}
	ms, err := sh.s.StockMovements(ctx, p.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var moves []string
	for _, m := range ms {
		moves = append(moves, fmt.Sprintf("w%d %+d =%d %s", sh.warehouseIndex(m.WarehouseID), m.Delta, m.QuantityAfter, m.Reason))
	}
	slices.Sort(moves)
	if want := []string{"w1 -3 =2 fulfillment"}; !slices.Equal(moves, want) {
		t.Errorf("movements: got %v; want %v (reservations are not movements)", moves, want)
	}
}

func TestExpireOrders(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	p := sh.products[0]
	sh.stock(p, 100)
	unpaid := placedOrder(t, sh, "unpaid")
	paid := placedOrder(t, sh, "paid")
	if _, err := sh.s.MarkOrderPaid(ctx, paid.ID); err != nil {
		t.Fatal(err)
	}
	n, err := sh.s.ExpireOrders(ctx, time.Now(), 10)
	if err != nil || n != 0 {
		t.Fatalf("before the hold ends: got %d, %v; want 0 expired", n, err)
	}
	n, err = sh.s.ExpireOrders(ctx, time.Now().Add(store.DefaultOrderHold+time.Minute), 10)
	if err != nil || n != 1 {
		t.Fatalf("after the hold: got %d, %v; want 1 expired", n, err)
	}
	o1, _ := sh.s.Order(ctx, unpaid.ID)
	o2, _ := sh.s.Order(ctx, paid.ID)
	if o1.Status != model.OrderCancelled || o2.Status != model.OrderPaid || sh.levels(p) != "100/3 - - -" {
		t.Errorf("got %s and %s, stock %s; want CANCELLED and PAID, 100/3", o1.Status, o2.Status, sh.levels(p))
	}
	if reason := mustIDs(t, sh.pool, `SELECT cancellation_reason FROM orders WHERE id = $1`, unpaid.ID); reason[0] != "expired" {
		t.Errorf("cancellation reason %q; want expired", reason[0])
	}
}

func TestConcurrentExpiryCancelsEachOrderOnce(t *testing.T) {
	sh := newShop(t)
	p := sh.products[0]
	sh.stock(p, 100, 100)
	const orders = 40
	for i := range orders {
		placedOrder(t, sh, fmt.Sprint(i))
	}
	later := time.Now().Add(time.Hour)
	counts := make([]int, 4)
	errs := make([]error, 4)
	race(4, func(i int) { counts[i], errs[i] = sh.s.ExpireOrders(context.Background(), later, 3) })
	total := 0
	for i := range counts {
		if errs[i] != nil {
			t.Fatalf("expirer %d: %v", i, errs[i])
		}
		total += counts[i]
	}
	events := sh.count(`SELECT count(*) FROM outbox WHERE kind = 'order.cancelled'`)
	if total != orders || events != orders || sh.levels(p) != "100/0 100/0 - -" {
		t.Errorf("expired %d, %d cancellation events, stock %s; want %d, %d, 100/0 100/0", total, events, sh.levels(p), orders, orders)
	}
}

func TestRunOrderExpiryLeadsOnce(t *testing.T) {
	sh := newShop(t, store.WithOrderHold(0))
	sh.stock(sh.products[0], 10)
	o := placedOrder(t, sh, "k")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); sh.s.RunOrderExpiry(ctx, 20*time.Millisecond, quiet) }()
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := sh.s.Order(context.Background(), o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == model.OrderCancelled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order still %s after 20s; want CANCELLED by the expiry job", got.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := sh.count(`SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`); n != 1 {
		t.Errorf("%d advisory locks held; want 1 (one leader)", n)
	}
}

func TestListOrders(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	p := sh.products[0]
	sh.stock(p, 100)
	var alice []string
	for i := range 7 {
		customer := []string{"alice", "bob"}[i%2]
		c, err := sh.s.CreateCart(ctx, customer)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(p, 1)}); err != nil {
			t.Fatal(err)
		}
		o, err := sh.s.Checkout(ctx, customer, model.CheckoutInput{CartID: c.ID, IdempotencyKey: fmt.Sprint(i), Email: "x@y.z"})
		if err != nil {
			t.Fatal(err)
		}
		if customer == "alice" {
			alice = append([]string{o.ID}, alice...) // newest first
		}
	}
	// Same created_at for all: the id breaks the tie.
	sh.exec(`UPDATE orders SET created_at = '2024-05-01T10:00:00Z' WHERE customer_id = 'alice' AND number % 4 = 1`)
	want := mustIDs(t, sh.pool, `SELECT id::text FROM orders WHERE customer_id = 'alice' ORDER BY created_at DESC, id DESC`)
	if len(want) != len(alice) {
		t.Fatalf("alice has %d orders; want %d", len(want), len(alice))
	}
	f := model.OrderFilter{CustomerID: ptr("alice")}
	var forward []string
	page := model.Page{Limit: 3}
	for {
		conn, err := sh.s.ListOrders(ctx, f, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range conn.Edges {
			forward = append(forward, e.Node.ID)
		}
		if !conn.PageInfo.HasNextPage {
			break
		}
		page.Cursor = *conn.PageInfo.EndCursor
	}
	if !slices.Equal(forward, want) {
		t.Errorf("forward walk: got %v; want %v", forward, want)
	}
	back, err := sh.s.ListOrders(ctx, f, model.Page{Limit: 2, Cursor: page.Cursor, Backward: true})
	if err != nil || len(back.Edges) != 2 || back.Edges[0].Node.ID != want[0] || back.Edges[1].Node.ID != want[1] || !back.PageInfo.HasNextPage {
		t.Errorf("backward page: got %v, %v; want the two before %s", back, err, want[2])
	}

	paidID := want[0]
	if _, err := sh.s.MarkOrderPaid(ctx, paidID); err != nil {
		t.Fatal(err)
	}
	paid, err := sh.s.ListOrders(ctx, model.OrderFilter{Status: []model.OrderStatus{model.OrderPaid}}, model.Page{Limit: 10})
	if err != nil || len(paid.Edges) != 1 || paid.Edges[0].Node.ID != paidID {
		t.Errorf("paid orders: got %v, %v; want only %s", paid, err, paidID)
	}
	from, to := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	old, err := sh.s.ListOrders(ctx, model.OrderFilter{From: &from, To: &to}, model.Page{Limit: 10})
	if n := sh.count(`SELECT count(*) FROM orders WHERE created_at < '2024-05-02'`); err != nil || len(old.Edges) != n || n == 0 {
		t.Errorf("orders of 2024-05-01: got %d, %v; want %d", len(old.Edges), err, n)
	}
	_, err = sh.s.ListOrders(ctx, f, model.Page{Limit: 3, Cursor: "bm9wZQ"})
	wantCode(t, err, model.CodeBadUserInput, "after")

	got, err := sh.s.OrdersByIDs(ctx, append(slices.Clone(want[:2]), "7d0e8a4e-5c1b-4c39-9f49-5d7c1f0f4a11"))
	if err != nil || len(got) != 2 || len(got[0].Lines) != 1 || len(got[0].Lines[0].Allocations) != 1 {
		t.Errorf("orders by ids: got %v, %v; want the 2 known orders with their lines", got, err)
	}
	_, err = sh.s.Order(ctx, "nope")
	wantCode(t, err, model.CodeNotFound, "")
}

// An order past its hold cannot be paid, whether the expiry job has cancelled it yet or
// not; racing the job, it ends CANCELLED or refused, never PAID after its expiry.
func TestNoPaymentAfterExpiry(t *testing.T) {
	sh := newShop(t, store.WithOrderHold(0))
	ctx := context.Background()
	p := sh.products[0]
	sh.stock(p, 100)
	late := placedOrder(t, sh, "late")
	_, err := sh.s.MarkOrderPaid(ctx, late.ID)
	wantCode(t, err, model.CodeConflict, "")
	if o, _ := sh.s.Order(ctx, late.ID); o.Status != model.OrderPendingPayment || sh.levels(p) != "100/3 - - -" {
		t.Fatalf("after a refused payment: %s, stock %s; want PENDING_PAYMENT and the stock still reserved until the job runs", o.Status, sh.levels(p))
	}
	var ids []string
	for i := range 20 {
		ids = append(ids, placedOrder(t, sh, fmt.Sprint("race-", i)).ID)
	}
	race(len(ids)+1, func(i int) {
		if i == len(ids) {
			_, _ = sh.s.ExpireOrders(ctx, time.Now(), 5)
			return
		}
		_, _ = sh.s.MarkOrderPaid(ctx, ids[i])
	})
	if n := sh.count(`SELECT count(*) FROM orders WHERE status = 'PAID'`); n != 0 {
		t.Errorf("%d expired orders were paid", n)
	}
}
