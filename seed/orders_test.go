package seed_test

import (
	"context"
	"testing"
	"time"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/seed"
)

// A year ending on 2026-12-31: Black Friday is 2026-11-27, Cyber Monday 2026-11-30.
var historyEnd = time.Date(2026, time.December, 31, 0, 0, 0, 0, time.UTC)

func TestOrdersHistoryAddsUp(t *testing.T) {
	pool := dbtest.New(t)
	MustCatalog(t, pool, seed.Options{Products: 300, Seed: 3})
	stats, err := seed.Orders(context.Background(), pool, seed.OrderOptions{Orders: 5000, Seed: 3, End: historyEnd})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Orders != 5000 || MustCount(t, pool, `SELECT count(*) FROM orders`) != 5000 {
		t.Fatalf("stats %+v, orders in table %d; want 5000", stats, MustCount(t, pool, `SELECT count(*) FROM orders`))
	}
	if n := MustCount(t, pool, `SELECT count(*) FROM order_lines`); n != stats.Lines || n < 5000 {
		t.Fatalf("lines: table %d, stats %d", n, stats.Lines)
	}
	cancelled := MustCount(t, pool, `SELECT count(*) FROM orders WHERE status = 'CANCELLED'`)
	if cancelled == 0 || cancelled > 300 {
		t.Fatalf("%d cancelled orders of 5000; want about 3%%", cancelled)
	}
	// The facts net of cancellations are the lines of the orders that stand.
	net := MustCount(t, pool, `SELECT sum(revenue_cents) FROM sales_facts`)
	standing := MustCount(t, pool, `SELECT sum(l.quantity * l.unit_price_cents) FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.status <> 'CANCELLED'`)
	if net != standing {
		t.Fatalf("net fact revenue %d; want the standing orders' %d", net, standing)
	}
	if n := MustCount(t, pool, `SELECT sum(order_first) FROM sales_facts`); n != 5000-cancelled {
		t.Fatalf("orders counted by the facts: %d; want %d", n, 5000-cancelled)
	}
	var outside int
	err = pool.QueryRow(context.Background(), `SELECT count(*) FROM orders WHERE created_at < $1::timestamptz - interval '365 days' OR created_at >= $1`, historyEnd).Scan(&outside)
	if err != nil || outside != 0 {
		t.Fatalf("%d orders outside the year (%v)", outside, err)
	}
}

func TestOrdersHistoryHasSeasonsAndSurges(t *testing.T) {
	pool := dbtest.New(t)
	MustCatalog(t, pool, seed.Options{Products: 200, Seed: 4})
	if _, err := seed.Orders(context.Background(), pool, seed.OrderOptions{Orders: 20000, Seed: 4, End: historyEnd, FactsOnly: true}); err != nil {
		t.Fatal(err)
	}
	if n := MustCount(t, pool, `SELECT count(*) FROM orders`); n != 0 {
		t.Fatalf("facts only wrote %d orders", n)
	}
	perDay := `SELECT sum(order_first) FROM sales_facts WHERE time >= $1 AND time < $1::timestamptz + interval '1 day'`
	day := func(d time.Time) int {
		var n int
		if err := pool.QueryRow(context.Background(), perDay, d).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var median int
	MustQuery(t, pool, `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n) FROM (
	    SELECT sum(order_first) AS n FROM sales_facts GROUP BY date_trunc('day', time)) d`, &median)
	blackFriday, cyberMonday := day(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)), day(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	if blackFriday < 6*median || cyberMonday < 6*median {
		t.Fatalf("Black Friday %d and Cyber Monday %d orders; want about ten times the median day's %d", blackFriday, cyberMonday, median)
	}
	var weekend, weekday float64
	MustQuery(t, pool, `SELECT avg(n) FILTER (WHERE dow IN (0, 6)), avg(n) FILTER (WHERE dow IN (1, 2, 3)) FROM (
	    SELECT extract(dow FROM date_trunc('day', time)) AS dow, sum(order_first) AS n FROM sales_facts GROUP BY 1, date_trunc('day', time)) d`, &weekend, &weekday)
	if weekend < 1.2*weekday {
		t.Fatalf("weekend days average %.0f orders, early weekdays %.0f; want weekends busier", weekend, weekday)
	}
}

func TestOrdersHistoryIsDeterministic(t *testing.T) {
	sums := make([]int, 2)
	for i := range sums {
		pool := dbtest.New(t)
		MustCatalog(t, pool, seed.Options{Products: 100, Seed: 5})
		if _, err := seed.Orders(context.Background(), pool, seed.OrderOptions{Orders: 500, Seed: 5, End: historyEnd}); err != nil {
			t.Fatal(err)
		}
		sums[i] = MustCount(t, pool, `SELECT sum(revenue_cents * extract(epoch FROM time)::bigint % 1000003) FROM sales_facts`)
	}
	if sums[0] != sums[1] {
		t.Fatalf("two loads of one seed differ: %d vs %d", sums[0], sums[1])
	}
}

func TestOrdersNeedAProduct(t *testing.T) {
	pool := dbtest.New(t)
	if _, err := seed.Orders(context.Background(), pool, seed.OrderOptions{Orders: 10, End: historyEnd}); err == nil {
		t.Fatal("orders on an empty catalog: got no error")
	}
}
