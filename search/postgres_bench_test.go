package search

import (
	"context"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
)

// BenchmarkPostgresSearch runs the three kinds of query against the PostgreSQL
// engine with 16 concurrent clients and reports percentiles of their latency. It needs a
// seeded catalog, named by BENCH_SEARCH_URL (skipped without it), for example:
//
//	scripts/pg.sh start .run/ps-pg 5459 fast; scripts/pg.sh createdb 5459 s100k
//	DATABASE_URL=$(scripts/pg.sh url 5459 s100k) bin/storefront seed --products 100000 --seed 7
//	BENCH_SEARCH_URL=$(scripts/pg.sh url 5459 s100k) go test -run '^$' -bench PostgresSearch -benchtime 20s ./search/
//
// The pool has the server's default size (DB_MAX_CONNS, 16) unless the URL sets
// pool_max_conns, and queries carry the default relevance weights, as the service passes
// them. Each kind cycles through a few variants, so that no single plan or page is all
// that is measured.
func BenchmarkPostgresSearch(b *testing.B) {
	url := os.Getenv("BENCH_SEARCH_URL")
	if url == "" {
		b.Skip("BENCH_SEARCH_URL is not set")
	}
	ctx := context.Background()
	pool, err := db.Open(ctx, url, func(c *pgxpool.Config) {
		if !strings.Contains(url, "pool_max_conns") {
			c.MaxConns = 16
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	e := NewPostgres(pool, DefaultConfig(), NewControls(pool))
	kinds := pgBenchQueries(b, pool)
	for _, name := range []string{"a-two-words-all-facets", "b-misspelled", "c-browse-3-facets"} {
		b.Run(name, func(b *testing.B) { pgBenchRun(b, e, kinds[name]) })
	}
}

// pgBenchClients is the concurrency the issue asks for.
const pgBenchClients = 16

// pgBenchRun issues the queries, cycling through them, from pgBenchClients goroutines.
func pgBenchRun(b *testing.B, e *Postgres, queries []model.SearchQuery) {
	ctx := context.Background()
	for _, q := range queries { // warm the caches and the prepared statements
		res, err := e.Search(ctx, q)
		if err != nil {
			b.Fatalf("%+v: %v", q, err)
		}
		if res.Total == 0 {
			b.Fatalf("%+v finds nothing: the benchmark would measure an empty result", q)
		}
	}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, 1024)
	next := 0
	b.SetParallelism(max(1, pgBenchClients/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		mine := make([]time.Duration, 0, 256)
		for pb.Next() {
			mu.Lock()
			q := queries[next%len(queries)]
			next++
			mu.Unlock()
			began := time.Now()
			if _, err := e.Search(ctx, q); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(began))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	pgReportPercentiles(b, lat)
}

func pgReportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.95), "p95-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "queries/s")
}

// pgBenchQueries returns five variants of each kind: (a) two catalog words, every facet
// counted; (b) the same kind of query with one word misspelled (one or two edits, within
// the fuzziness); (c) a category browsed with a brand and two materials selected.
func pgBenchQueries(b *testing.B, pool *pgxpool.Pool) map[string][]model.SearchQuery {
	weights := model.RelevanceWeights{Popularity: 1, Recency: 0.5} // search_weights' default row
	text := func(texts ...string) []model.SearchQuery {
		out := make([]model.SearchQuery, len(texts))
		for i, t := range texts {
			out[i] = model.SearchQuery{Text: t, Weights: weights}
		}
		return out
	}
	out := map[string][]model.SearchQuery{
		"a-two-words-all-facets": text("oak table", "velvet sofa", "brass lamp", "wool rug", "leather armchair"),
		"b-misspelled":           text("velvit sofa", "oak tabel", "bras lamp", "wool rugg", "lether armchair"),
	}
	for _, c := range []struct{ category, m1, m2 string }{
		{"dining-tables", "oak", "walnut"}, {"sectional-sofas", "velvet", "linen"}, {"area-rugs", "wool", "jute"},
		{"bookcases", "oak", "pine"}, {"armchairs", "leather", "boucle"},
	} {
		out["c-browse-3-facets"] = append(out["c-browse-3-facets"], pgBrowseQuery(b, pool, c.category, c.m1, c.m2))
	}
	return out
}

// pgBrowseQuery browses the category slug with its commonest brand among products of
// material m1, and the materials m1 and m2.
func pgBrowseQuery(b *testing.B, pool *pgxpool.Pool, slug, m1, m2 string) model.SearchQuery {
	var category, brand string
	err := pool.QueryRow(context.Background(), `
SELECT p.category_id::text, p.brand_id::text FROM products p JOIN categories c ON c.id = p.category_id
 WHERE c.slug = $1 AND p.brand_id IS NOT NULL AND p.attributes ->> 'material' = $2
 GROUP BY 1, 2 ORDER BY count(*) DESC, 2 LIMIT 1`, slug, m1).Scan(&category, &brand)
	if err != nil {
		b.Fatalf("browse query for %s: %v", slug, err)
	}
	return model.SearchQuery{Filter: model.SearchFilter{CategoryIDs: []string{category}, BrandIDs: []string{brand},
		Attributes: []model.AttributeFilter{{Key: "material", Values: []string{m1, m2}}}}}
}
