package seed_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/seed"
)

// MustCatalog seeds pool or fails tb.
func MustCatalog(tb testing.TB, pool *pgxpool.Pool, opts seed.Options) seed.Stats {
	tb.Helper()
	stats, err := seed.Catalog(context.Background(), pool, opts)
	if err != nil {
		tb.Fatalf("seed.Catalog(%+v): %v", opts, err)
	}
	return stats
}

// MustQuery scans the single row of sql into dst or fails tb.
func MustQuery(tb testing.TB, pool *pgxpool.Pool, sql string, dst ...any) {
	tb.Helper()
	if err := pool.QueryRow(context.Background(), sql).Scan(dst...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// MustCount returns the integer that sql selects, or fails tb.
func MustCount(tb testing.TB, pool *pgxpool.Pool, sql string) int {
	tb.Helper()
	var n int
	MustQuery(tb, pool, sql, &n)
	return n
}

func TestCatalogStatsMatchTables(t *testing.T) {
	pool := dbtest.New(t)
	var progress bytes.Buffer
	stats := MustCatalog(t, pool, seed.Options{Products: 500, Seed: 1, Progress: &progress})

	for _, c := range []struct {
		table string
		got   int
	}{
		{"categories", stats.Categories},
		{"brands", stats.Brands},
		{"warehouses", stats.Warehouses},
		{"products", stats.Products},
		{"inventory", stats.InventoryRows},
	} {
		if want := MustCount(t, pool, "SELECT count(*) FROM "+c.table); c.got != want {
			t.Errorf("stats for %s = %d; the table has %d", c.table, c.got, want)
		}
	}
	if stats.Products != 500 || stats.InventoryRows != 500*stats.Warehouses || stats.Skipped || stats.Elapsed <= 0 {
		t.Errorf("stats = %+v; want 500 products, one stock row per warehouse, not skipped, elapsed > 0", stats)
	}
	if stats.Brands < 40 || stats.Brands > 60 || stats.Warehouses != 4 {
		t.Errorf("stats = %+v; want about 50 brands and 4 warehouses", stats)
	}
	// A writer that is not a terminal gets a line per phase.
	for _, phase := range []string{"categories", "brands", "warehouses", "products", "inventory"} {
		if !strings.Contains(progress.String(), phase) {
			t.Errorf("progress output %q; want a line for %s", progress.String(), phase)
		}
	}
	if n := MustCount(t, pool, "SELECT count(*) FROM outbox"); n != 0 {
		t.Errorf("outbox has %d rows; a bulk load writes none", n)
	}
}

// digest hashes every row the seed writes, in a fixed order.
const digest = `
SELECT md5(string_agg(line, E'\n' ORDER BY k)) FROM (
    SELECT 'c' || id AS k, concat_ws('|', id, parent_id, path, slug, name, created_at, updated_at) AS line FROM categories
    UNION ALL SELECT 'b' || id, concat_ws('|', id, slug, name, created_at) FROM brands
    UNION ALL SELECT 'w' || id, concat_ws('|', id, code, name, priority, created_at) FROM warehouses
    UNION ALL SELECT 'p' || sku, concat_ws('|', id, sku, slug, name, description, category_id, brand_id, price_cents,
        cost_cents, currency, status, attributes, popularity, rating, created_at, updated_at) FROM products
    UNION ALL SELECT 'i' || product_id || warehouse_id,
        concat_ws('|', product_id, warehouse_id, quantity, reserved_quantity, updated_at) FROM inventory
) rows`

// firstProducts hashes the products numbered 1 to 100 and their stock.
const firstProducts = `
SELECT md5(string_agg(concat_ws('|', p.id, sku, slug, name, price_cents, attributes, i.warehouse_id, i.quantity),
                      E'\n' ORDER BY sku, i.warehouse_id))
  FROM products p JOIN inventory i ON i.product_id = p.id
 WHERE split_part(sku, '-', 2)::int <= 100`

func TestCatalogIsDeterministic(t *testing.T) {
	load := func(seedValue int64, products int) *pgxpool.Pool {
		pool := dbtest.New(t)
		MustCatalog(t, pool, seed.Options{Products: products, Seed: seedValue})
		return pool
	}
	a, b, other, more := load(7, 300), load(7, 300), load(8, 300), load(7, 400)
	sum := func(pool *pgxpool.Pool, sql string) string {
		var s string
		MustQuery(t, pool, sql, &s)
		return s
	}

	if got, want := sum(b, digest), sum(a, digest); got != want {
		t.Errorf("seed 7 twice: digest %s; want %s", got, want)
	}
	if got, first := sum(other, digest), sum(a, digest); got == first {
		t.Errorf("seeds 7 and 8 both give digest %s; want different catalogs", got)
	}
	if got, want := sum(more, firstProducts), sum(a, firstProducts); got != want {
		t.Errorf("first 100 products of seed 7 with 400 products: digest %s; with 300: %s", got, want)
	}
}

func TestCatalogIfEmpty(t *testing.T) {
	pool := dbtest.New(t)
	first := MustCatalog(t, pool, seed.Options{Products: 50, Seed: 1})

	skipped := MustCatalog(t, pool, seed.Options{Products: 80, Seed: 2, IfEmpty: true})
	if !skipped.Skipped || skipped.Products != 0 {
		t.Errorf("IfEmpty on a seeded catalog: stats %+v; want skipped, nothing written", skipped)
	}
	_, err := seed.Catalog(context.Background(), pool, seed.Options{Products: 80, Seed: 2})
	if !errors.Is(err, seed.ErrNotEmpty) {
		t.Errorf("seeding a seeded catalog: error %v; want ErrNotEmpty", err)
	}
	if n := MustCount(t, pool, "SELECT count(*) FROM products"); n != first.Products {
		t.Errorf("products after the refused seeds = %d; want %d", n, first.Products)
	}
}

// Instances that all run `seed --if-empty` at start-up must load the catalog exactly once.
func TestCatalogConcurrentIfEmptyLoadsOnce(t *testing.T) {
	pool := dbtest.New(t)
	const loaders = 4
	results := make(chan error, loaders)
	loaded := make(chan bool, loaders)
	for i := range loaders {
		go func() {
			stats, err := seed.Catalog(context.Background(), pool, seed.Options{Products: 100, Seed: int64(i), IfEmpty: true})
			results <- err
			loaded <- err == nil && !stats.Skipped
		}()
	}
	loads := 0
	for range loaders {
		if err := <-results; err != nil {
			t.Errorf("concurrent seed: %v", err)
		}
		if <-loaded {
			loads++
		}
	}
	if n := MustCount(t, pool, "SELECT count(*) FROM products"); loads != 1 || n != 100 {
		t.Errorf("%d of %d loaders loaded, %d products; want 1 and 100", loads, loaders, n)
	}
}

func TestCatalogRejectsNegativeProducts(t *testing.T) {
	if _, err := seed.Catalog(context.Background(), nil, seed.Options{Products: -1}); err == nil {
		t.Error("Products -1: no error; want one")
	}
}

// cancelOnWrite cancels a load as soon as its first phase reports.
type cancelOnWrite struct{ cancel context.CancelFunc }

func (w cancelOnWrite) Write(p []byte) (int, error) {
	w.cancel()
	return len(p), nil
}

func TestCatalogIsAllOrNothing(t *testing.T) {
	pool := dbtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	_, err := seed.Catalog(ctx, pool, seed.Options{Products: 100, Seed: 1, Progress: cancelOnWrite{cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("load cancelled after its first phase: error %v; want context.Canceled", err)
	}
	for _, table := range []string{"categories", "brands", "warehouses", "products", "inventory"} {
		if n := MustCount(t, pool, "SELECT count(*) FROM "+table); n != 0 {
			t.Errorf("%s has %d rows after a failed load; want 0", table, n)
		}
	}
}

func TestCatalogTree(t *testing.T) {
	pool := dbtest.New(t)
	MustCatalog(t, pool, seed.Options{Products: 300, Seed: 3})

	checks := []struct{ what, sql string }{
		{"categories whose path does not end in themselves or start at a root", `
			SELECT count(*) FROM categories c
			 WHERE c.path[array_length(c.path, 1)] <> c.id
			    OR NOT EXISTS (SELECT 1 FROM categories r WHERE r.id = c.path[1] AND r.parent_id IS NULL)`},
		{"categories whose path is not their parent's plus themselves", `
			SELECT count(*) FROM categories c LEFT JOIN categories p ON p.id = c.parent_id
			 WHERE c.path <> coalesce(p.path, '{}') || c.id`},
		{"products outside a leaf category", `
			SELECT count(*) FROM products p
			 WHERE NOT EXISTS (SELECT 1 FROM categories c WHERE c.id = p.category_id)
			    OR EXISTS (SELECT 1 FROM categories k WHERE k.parent_id = p.category_id)`},
		{"top-level categories without 3 to 6 children", `
			SELECT count(*) FROM categories r
			 WHERE r.parent_id IS NULL
			   AND (SELECT count(*) FROM categories k WHERE k.parent_id = r.id) NOT BETWEEN 3 AND 6`},
	}
	for _, c := range checks {
		if n := MustCount(t, pool, c.sql); n != 0 {
			t.Errorf("%s: %d; want 0", c.what, n)
		}
	}

	var roots []string
	var depth int
	MustQuery(t, pool, `SELECT array_agg(slug ORDER BY slug) FILTER (WHERE parent_id IS NULL),
	                           max(array_length(path, 1)) FROM categories`, &roots, &depth)
	if want := []string{"bedding", "decor", "furniture", "lighting", "outdoor", "rugs"}; !slices.Equal(roots, want) || depth != 3 {
		t.Errorf("roots %v, depth %d; want %v, 3", roots, depth, want)
	}

	var codes []string
	MustQuery(t, pool, `SELECT array_agg(code || ':' || priority ORDER BY priority) FROM warehouses`, &codes)
	if want := []string{"EWR1:10", "ATL1:20", "DFW1:30", "LAX1:40"}; !slices.Equal(codes, want) {
		t.Errorf("warehouses %v; want %v", codes, want)
	}
}

func TestCatalogDistributions(t *testing.T) {
	pool := dbtest.New(t)
	MustCatalog(t, pool, seed.Options{Products: 2000, Seed: 11})

	var medianPrice, active, draft, archived, typicalRating, outEverywhere float64
	MustQuery(t, pool, `
		SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY price_cents),
		       avg((status = 'ACTIVE')::int), avg((status = 'DRAFT')::int), avg((status = 'ARCHIVED')::int),
		       avg((rating BETWEEN 3.5 AND 4.9)::int)
		  FROM products`, &medianPrice, &active, &draft, &archived, &typicalRating)
	MustQuery(t, pool, `
		SELECT avg((total = 0)::int) FROM (SELECT sum(quantity) AS total FROM inventory GROUP BY product_id) s`,
		&outEverywhere)

	ranges := []struct {
		what     string
		got      float64
		min, max float64
	}{
		{"median price in cents", medianPrice, 8000, 18000},
		{"share ACTIVE", active, 0.88, 0.96},
		{"share DRAFT", draft, 0.025, 0.08},
		{"share ARCHIVED", archived, 0.01, 0.055},
		{"share of ratings in 3.5-4.9", typicalRating, 0.8, 1},
		{"share out of stock everywhere", outEverywhere, 0.07, 0.13},
	}
	for _, r := range ranges {
		if r.got < r.min || r.got > r.max {
			t.Errorf("%s = %v; want within [%v, %v]", r.what, r.got, r.min, r.max)
		}
	}

	base := time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)
	invalid := []struct{ what, sql string }{
		{"prices under $5", `SELECT count(*) FROM products WHERE price_cents < 500`},
		{"costs outside 35-70% of the price", `
			SELECT count(*) FROM products WHERE cost_cents * 100 > price_cents * 70 OR cost_cents * 100 < price_cents * 35 - 100`},
		{"currencies other than USD", `SELECT count(*) FROM products WHERE currency <> 'USD'`},
		{"ratings outside 1-5", `SELECT count(*) FROM products WHERE rating NOT BETWEEN 1 AND 5`},
		{"popularity outside 0-100000", `SELECT count(*) FROM products WHERE popularity NOT BETWEEN 0 AND 100000`},
		{"timestamps outside the year before the base instant", `
			SELECT count(*) FROM products WHERE created_at < '` + base.AddDate(-1, 0, 0).Format(time.RFC3339) + `'
			    OR updated_at < created_at OR updated_at > '` + base.Format(time.RFC3339) + `'`},
		{"empty search vectors", `SELECT count(*) FROM products WHERE search_vector = ''::tsvector`},
		{"products without a stock row per warehouse", `
			SELECT count(*) FROM products p
			 WHERE (SELECT count(*) FROM inventory i WHERE i.product_id = p.id) <> (SELECT count(*) FROM warehouses)`},
		{"stock rows outside 0-200 or reserved", `
			SELECT count(*) FROM inventory WHERE quantity NOT BETWEEN 0 AND 200 OR reserved_quantity <> 0`},
	}
	for _, c := range invalid {
		if n := MustCount(t, pool, c.sql); n != 0 {
			t.Errorf("%s: %d; want 0", c.what, n)
		}
	}

	var medianPopularity, maxPopularity int
	MustQuery(t, pool, `SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY popularity), max(popularity) FROM products`,
		&medianPopularity, &maxPopularity)
	if medianPopularity > 1000 || maxPopularity < 10000 {
		t.Errorf("popularity median %d, max %d; want a skew: median <= 1000, max >= 10000", medianPopularity, maxPopularity)
	}
}

func TestCatalogFindsProductsByFacetAndText(t *testing.T) {
	pool := dbtest.New(t)
	MustCatalog(t, pool, seed.Options{Products: 2000, Seed: 5})

	for _, sql := range []string{
		`SELECT count(*) FROM products WHERE attributes @> '{"material": "oak"}'`,
		`SELECT count(*) FROM products WHERE attributes @> '{"material": "wool", "color": "ivory"}'`,
		`SELECT count(*) FROM products WHERE attributes @> '{"dimmable": true, "finish": "brass"}'`,
		`SELECT count(*) FROM products WHERE search_vector @@ websearch_to_tsquery('english', 'velvet sofa')`,
		`SELECT count(*) FROM products WHERE search_vector @@ websearch_to_tsquery('english', 'lighting')`,
	} {
		if n := MustCount(t, pool, sql); n == 0 {
			t.Errorf("%s: no products; want some", sql)
		}
	}
}

func TestCatalogAttributesFollowFamily(t *testing.T) {
	pool := dbtest.New(t)
	MustCatalog(t, pool, seed.Options{Products: 600, Seed: 9})

	want := map[string]string{
		"furniture": "FUR assembly_required,color,depth_cm,height_cm,material,weight_kg,width_cm",
		"lighting":  "LGT bulb_type,color_temperature_k,dimmable,finish,wattage",
		"rugs":      "RUG color,material,pile_height,shape,size",
		"bedding":   "BED color,material,size,thread_count",
		"decor":     "DEC color,material,style",
		"outdoor":   "OUT color,material,weather_resistant,weight_kg",
	}
	rows, err := pool.Query(context.Background(), `
		SELECT DISTINCT r.slug, split_part(p.sku, '-', 1) || ' ' ||
		       array_to_string(ARRAY(SELECT jsonb_object_keys(p.attributes) ORDER BY 1), ',')
		  FROM products p
		  JOIN categories c ON c.id = p.category_id
		  JOIN categories r ON r.id = c.path[1]`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]string, error) {
		var pair [2]string
		return pair, row.Scan(&pair[0], &pair[1])
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("got %d (family, sku prefix and attribute keys) combinations %v; want one per family", len(got), got)
	}
	for _, g := range got {
		if want[g[0]] != g[1] {
			t.Errorf("%s products have %q; want %q", g[0], g[1], want[g[0]])
		}
	}
}

// BenchmarkCatalog100k loads 100,000 products and their stock into a fresh database per
// iteration: go test -run '^$' -bench Catalog100k -benchtime 1x ./seed/
func BenchmarkCatalog100k(b *testing.B) {
	const products = 100_000
	for range b.N {
		b.StopTimer()
		pool := dbtest.New(b)
		b.StartTimer()
		MustCatalog(b, pool, seed.Options{Products: products, Seed: 1})
	}
	b.ReportMetric(float64(products*b.N)/b.Elapsed().Seconds(), "products/s")
}
