package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/homegoods/storefront/cache/cachetest"
)

// latencies collects request latencies from concurrent workers.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d)
	l.mu.Unlock()
}

// report puts the percentiles of the run on b, each metric name prefixed.
func (l *latencies) report(b *testing.B, prefix string) {
	slices.Sort(l.all)
	for _, p := range []float64{0.50, 0.95, 0.99} {
		ms := float64(l.all[int(p*float64(len(l.all)-1))].Microseconds()) / 1000
		b.ReportMetric(ms, fmt.Sprintf("%sp%d-ms", prefix, int(p*100)))
	}
}

const addLinesMutation = `mutation($c: ID!, $l: [CartLineInput!]!) { addCartLines(cartId: $c, lines: $l) { totalQuantity } }`

// BenchmarkCheckout fills carts of 1 to 5 lines from a 10k-product catalog, then checks them
// out, both at concurrency 32 against the real server over HTTP; it reports orders per
// second and the latency percentiles of checkouts and of add-to-cart calls.
func BenchmarkCheckout(b *testing.B) {
	s := newShop(b, 10_000)
	if _, err := s.db.Exec(context.Background(), `UPDATE inventory SET quantity = 1000000, reserved_quantity = 0`); err != nil {
		b.Fatal(err)
	}
	ids := s.productIDs(2000)
	const workers = 32
	n := max(b.N, 2000)
	carts := make([]string, n)
	var adds, checkouts latencies
	parallel(workers, n, func(i int) {
		cart := s.must("", `mutation { createCart { token } }`, nil)["createCart"].(map[string]any)["token"].(string)
		for l := range 1 + i%5 {
			line := map[string]any{"productId": ids[(i*7+l*13)%len(ids)], "quantity": 1 + l%3}
			start := time.Now()
			s.must("", addLinesMutation, map[string]any{"c": cart, "l": []map[string]any{line}})
			adds.add(time.Since(start))
		}
		carts[i] = cart
	})

	b.ResetTimer()
	started := time.Now()
	parallel(workers, n, func(i int) {
		start := time.Now()
		s.must("", checkoutMutation, checkoutVars(carts[i], fmt.Sprintf("bench-%d", i)))
		checkouts.add(time.Since(start))
	})
	b.ReportMetric(float64(n)/time.Since(started).Seconds(), "orders/s")
	checkouts.report(b, "checkout-")
	adds.report(b, "add-")
}

// productIDs returns the global ids of up to n active products.
func (s *shop) productIDs(n int) []string {
	s.t.Helper()
	rows, err := s.db.Query(context.Background(), `SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY sku LIMIT $1`, n)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			s.t.Fatal(err)
		}
		ids = append(ids, "gid://storefront/Product/"+id)
	}
	return ids
}

// parallel runs f(0..n-1) on workers goroutines.
func parallel(workers, n int, f func(int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// BenchmarkAlertLatency measures the time from the commit of a stock change that crosses
// a threshold to its alert reaching a websocket subscriber, through the outbox relay and
// Redis pub/sub.
func BenchmarkAlertLatency(b *testing.B) {
	env := withRedis(b, newTestEnv(b), cachetest.URL(b))
	e := newAlertsEnv(b, 1, env)
	row := e.rows[0]
	c, err := wsOpen(b, e.bases[0], transportWS, map[string]any{"Authorization": "Bearer " + e.token}, false)
	if err != nil {
		b.Fatal(err)
	}
	alerts := wsSubscribe(b, c, transportWS, row.vars())
	var lat latencies
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		e.setStock(b, row, 20*(i%2)) // out of stock, back in stock, and again
		committed := time.Now()
		next(b, alerts, "the subscriber")
		lat.add(time.Since(committed))
	}
	lat.report(b, "")
}
