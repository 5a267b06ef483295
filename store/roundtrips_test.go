package store_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/store"
)

// roundTrips counts what a connection sends to PostgreSQL: every query (BEGIN and COMMIT
// included) and every batch is one round trip once the statement cache knows its statements.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// count returns the round trips that f takes, run once before to fill the statement cache.
func (r *roundTrips) count(t *testing.T, f func(first bool) error) int64 {
	t.Helper()
	if err := f(true); err != nil {
		t.Fatal(err)
	}
	before := r.n.Load()
	if err := f(false); err != nil {
		t.Fatal(err)
	}
	return r.n.Load() - before
}

// Adding to a cart is one round trip, a checkout two, for a customer as for a guest
// (the whole transaction, and the order read back with its lines).
func TestCartAndCheckoutRoundTrips(t *testing.T) {
	sh := newShop(t)
	trips := &roundTrips{}
	pool := dbtest.Open(t, sh.pool.Config().ConnString(), func(c *pgxpool.Config) {
		c.MaxConns = 1 // one connection: its statement cache is warm after the first run
		c.ConnConfig.Tracer = trips
	})
	s := store.New(pool, store.WithCheckoutLimits(store.DefaultCheckoutLimits))
	ctx := context.Background()
	p, q := sh.products[0], sh.products[1]
	sh.stock(p, 100)
	sh.stock(q, 100)
	carts := map[bool]string{true: sh.cart(), false: sh.cart()}

	add := trips.count(t, func(first bool) error {
		_, err := s.AddCartLines(ctx, carts[first], []model.CartLineInput{line(p, 1), line(q, 2)})
		return err
	})
	for _, who := range []struct{ name, customer string }{{"guest", ""}, {"customer", "carol"}} {
		checkout := trips.count(t, func(first bool) error {
			cart := sh.cart(line(p, 1))
			if who.customer != "" {
				cart = sh.customerCart(who.customer, line(p, 1))
			}
			key := "first"
			if !first {
				key = "second"
			}
			o, err := s.Checkout(ctx, who.customer, model.CheckoutInput{CartID: cart, IdempotencyKey: key,
				Email: who.name + "@example.com", ShippingAddress: json.RawMessage(`{"line1":"` + who.name + `"}`)})
			if err == nil && (len(o.Lines) != 1 || len(o.Lines[0].Allocations) != 1) {
				t.Errorf("%s checkout: got lines %+v; want one line, allocated", who.name, o.Lines)
			}
			return err
		})
		if checkout != 2 {
			t.Errorf("%s checkout: %d round trips; want 2", who.name, checkout)
		}
	}
	if add != 1 {
		t.Errorf("add to cart: %d round trips; want 1", add)
	}
}
