package postgres

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/relevance"
	"github.com/homegoods/storefront/search/searchtest"
)

// BenchmarkPostgresSearch runs the kinds of query against the PostgreSQL engine
// with 16 concurrent clients (SEARCH_BENCH_CLIENTS) and reports percentiles of their
// latency: the engine alone, to set beside the same query through the API. It needs a
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
	e := New(pool, search.DefaultConfig(), relevance.NewControls(pool))
	kinds := pgBenchQueries(b, pool)
	for _, name := range []string{"a-two-words-all-facets", "b-misspelled", "c-browse-3-facets", "d-browse-all-facets"} {
		b.Run(name, func(b *testing.B) { pgBenchRun(b, e, kinds[name]) })
	}
}

// pgBenchRun issues the queries, cycling through them, from benchClients goroutines.
func pgBenchRun(b *testing.B, e *Engine, queries []model.SearchQuery) {
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
	var next atomic.Int64
	lat := searchtest.RunClients(b, searchtest.BenchClients(), func() error {
		_, err := e.Search(ctx, queries[(next.Add(1)-1)%int64(len(queries))])
		return err
	})
	searchtest.ReportPercentiles(b, lat)
}

// pgBenchQueries returns five variants of each kind: (a) two catalog words, every facet
// counted; (b) the same kind of query with one word misspelled (one or two edits, within
// the fuzziness); (c) a category browsed with a brand and two materials selected; and
// (d) the faceted browse of the whole catalog, no words and no filter, every facet counted
// (one variant: there is one such page).
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
		"d-browse-all-facets":    {{Weights: weights}},
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
