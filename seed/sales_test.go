package seed

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/homegoods/storefront/db/dbtest"
)

func TestSalesHistory(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := Catalog(ctx, pool, Options{Products: 300, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	first, err := SalesHistory(ctx, pool, 9, now, 30)
	if err != nil {
		t.Fatal(err)
	}
	again, err := SalesHistory(ctx, pool, 9, now, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) == 0 || !reflect.DeepEqual(first, again) {
		t.Fatalf("two histories of one catalog, seed and time: %d and %d sales, equal=%v; want equal and non-empty",
			len(first), len(again), reflect.DeepEqual(first, again))
	}

	var active int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM products WHERE status = 'ACTIVE' AND popularity > 0`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	sold := map[string]int{}
	for _, o := range first {
		if o.At.After(now) || o.At.Before(now.Add(-30*24*time.Hour)) || len(o.Sales) != 1 {
			t.Fatalf("order %+v: want one sale within the 30 days before %s", o, now)
		}
		s := o.Sales[0]
		if s.Units < 1 || len(s.CategoryIDs) == 0 {
			t.Fatalf("sale %+v: want 1+ units and a category path", s)
		}
		sold[s.ProductID] += s.Units
	}
	if len(sold) != active {
		t.Errorf("products with sales: got %d; want every active product (%d)", len(sold), active)
	}

	// Popular products sell more: the most popular outsells the median one.
	var top, median string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY popularity DESC LIMIT 1`).Scan(&top); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT id::text FROM products WHERE status = 'ACTIVE' AND popularity > 0
	    ORDER BY popularity OFFSET (SELECT count(*) / 2 FROM products WHERE status = 'ACTIVE' AND popularity > 0) LIMIT 1`).Scan(&median); err != nil {
		t.Fatal(err)
	}
	if sold[top] <= sold[median] {
		t.Errorf("units of the most popular product %d; of the median one %d; want more", sold[top], sold[median])
	}
}
