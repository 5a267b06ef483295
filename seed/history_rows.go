package seed

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// orderHold is how long the generated orders were held unpaid, as checkout does by default.
const orderHold = 30 * time.Minute

var (
	cartColumns  = []string{"id", "customer_id", "status", "currency", "created_at", "updated_at"}
	orderColumns = []string{"id", "customer_id", "email", "status", "currency", "total_cents", "cart_id",
		"cancellation_reason", "expires_at", "created_at", "updated_at", "paid_at", "fulfilled_at", "cancelled_at"}
	lineColumns = []string{"order_id", "product_id", "category_id", "sku", "name", "quantity", "unit_price_cents"}
	factColumns = []string{"time", "order_id", "product_id", "category_id", "brand_id", "warehouse_id",
		"units", "revenue_cents", "cost_cents", "order_first", "category_first", "brand_first", "product_first"}
)

// copyHistory copies a history table by table, each pass regenerating the same orders.
func copyHistory(ctx context.Context, tx pgx.Tx, newHistory func() *history, opts OrderOptions) (OrderStats, error) {
	var s OrderStats
	phases := []struct {
		table   string
		columns []string
		rows    func(o *genOrder) [][]any
		count   *int
	}{
		{"carts", cartColumns, cartRows, nil},
		{"orders", orderColumns, orderRows, &s.Orders},
		{"order_lines", lineColumns, lineRows, &s.Lines},
		{"sales_facts", factColumns, factRows, &s.Facts},
	}
	if opts.FactsOnly {
		phases = phases[3:]
	}
	progress := newProgress(opts.Progress)
	for _, p := range phases {
		m := progress.phase(ctx, p.table, -1) // the count is known only at the end
		n, err := tx.CopyFrom(ctx, pgx.Identifier{p.table}, p.columns, historyRows(m, newHistory(), p.rows))
		if err != nil {
			return OrderStats{}, fmt.Errorf("copy %s: %w", p.table, err)
		}
		m.done(n)
		if p.count != nil {
			*p.count = int(n)
		}
	}
	if _, err := tx.Exec(ctx, `ANALYZE sales_facts`); err != nil {
		return OrderStats{}, fmt.Errorf("analyze: %w", err)
	}
	return s, nil
}

// historyRows streams the rows that rows makes of each order of h.
func historyRows(m *meter, h *history, rows func(*genOrder) [][]any) pgx.CopyFromSource {
	var pending [][]any
	return pgx.CopyFromFunc(func() ([]any, error) {
		for len(pending) == 0 {
			o := h.next()
			if o == nil {
				return nil, nil
			}
			pending = rows(o)
		}
		if err := m.tick(); err != nil {
			return nil, err
		}
		row := pending[0]
		pending = pending[1:]
		return row, nil
	})
}

func cartRows(o *genOrder) [][]any {
	return [][]any{{o.cart, o.customer, "CHECKED_OUT", "USD", o.placed, o.placed}}
}

func orderRows(o *genOrder) [][]any {
	var reason *string
	updated := o.placed
	for _, t := range []*time.Time{o.paid, o.fulfilled, o.cancelled} {
		if t != nil && t.After(updated) {
			updated = *t
		}
	}
	if o.cancelled != nil {
		r := "customer request"
		reason = &r
	}
	return [][]any{{o.id, o.customer, o.customer + "@example.com", o.status(), "USD", o.totalCents, o.cart,
		reason, o.placed.Add(orderHold), o.placed, updated, o.paid, o.fulfilled, o.cancelled}}
}

func lineRows(o *genOrder) [][]any {
	out := make([][]any, len(o.lines))
	for i, l := range o.lines {
		out[i] = []any{o.id, l.product.id, l.product.category, l.product.sku, l.product.name, l.quantity, l.product.price}
	}
	return out
}

// factRows are the analytics facts of an order: one per line at its placing, flagged so
// that distinct orders add up per order, category, brand and product, and their negation at
// its cancellation.
func factRows(o *genOrder) [][]any {
	out := make([][]any, 0, 2*len(o.lines))
	categories, brands := map[uuid]bool{}, map[uuid]bool{}
	for i, l := range o.lines {
		p := l.product
		first := func(seen map[uuid]bool, key *uuid) int {
			if key == nil || seen[*key] {
				return 0
			}
			seen[*key] = true
			return 1
		}
		cat := p.category
		out = append(out, []any{o.placed, o.id, p.id, p.category, p.brand, l.warehouse,
			l.quantity, int64(l.quantity) * p.price, int64(l.quantity) * p.cost,
			boolInt(i == 0), first(categories, &cat), first(brands, p.brand), 1})
	}
	if o.cancelled != nil {
		for _, f := range out[:len(o.lines)] {
			neg := append([]any{*o.cancelled}, f[1:6]...)
			neg = append(neg, -f[6].(int), -f[7].(int64), -f[8].(int64), -f[9].(int), -f[10].(int), -f[11].(int), -f[12].(int))
			out = append(out, neg)
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
