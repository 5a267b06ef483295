package indexer

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/elastic"
	"github.com/homegoods/storefront/search/relevance"
	"github.com/homegoods/storefront/search/searchtest"
	"github.com/homegoods/storefront/seed"
)

// Benchmarks of the Elasticsearch side at catalog sizes of SEARCH_BENCH_PRODUCTS products
// (default 10,000). SEARCH_BENCH_DATABASE_URL names a database to use (migrated and
// seeded when empty, kept afterwards, so that a 100k catalog is seeded once); without it
// a fresh test database is seeded. SEARCH_BENCH_INDEX names the index (alias) to use, by
// default one named after the database. For example:
//
//	TEST_ELASTICSEARCH_URL=http://127.0.0.1:9260 SEARCH_BENCH_PRODUCTS=100000 \
//	SEARCH_BENCH_DATABASE_URL=postgres://storefront@127.0.0.1:5453/es100k \
//	go test -run '^$' -bench Engine -benchtime 200x ./search/

type benchEnv struct {
	pool *pgxpool.Pool
	ix   *Indexer
	es   *elastic.Engine
	n    int
}

var (
	benchOnce sync.Once
	bench     *benchEnv
	benchErr  error
)

// benchSetup returns the catalog and an index built from it, shared by the benchmarks.
func benchSetup(b *testing.B) *benchEnv {
	b.Helper()
	searchtest.ElasticURL(b)
	benchOnce.Do(func() { bench, benchErr = newBenchEnv(b) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func newBenchEnv(b *testing.B) (*benchEnv, error) {
	n := 10_000
	if v, err := strconv.Atoi(os.Getenv("SEARCH_BENCH_PRODUCTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	var pool *pgxpool.Pool
	if url := os.Getenv("SEARCH_BENCH_DATABASE_URL"); url != "" {
		var err error
		if pool, err = db.Open(ctx, url, nil); err != nil {
			return nil, err
		}
		// Migrate a new database only: a seeded one is kept across runs as it is.
		var exists bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass('products') IS NOT NULL`).Scan(&exists); err != nil {
			return nil, err
		}
		if !exists {
			if _, err := db.Migrate(ctx, pool); err != nil {
				return nil, err
			}
		}
	} else {
		pool = dbtest.Open(b, dbtest.NewURL(b), nil)
	}
	if _, err := seed.Catalog(ctx, pool, seed.Options{Products: n, Seed: 1, IfEmpty: true}); err != nil {
		return nil, err
	}
	// The index is named after the database: a kept database keeps its index across runs
	// (Ensure builds it once); indices of throwaway databases of earlier runs are deleted.
	var dbName string
	if err := pool.QueryRow(ctx, `SELECT current_database()`).Scan(&dbName); err != nil {
		return nil, err
	}
	index := "bench_" + dbName + "_products"
	if v := os.Getenv("SEARCH_BENCH_INDEX"); v != "" {
		index = v // the index a server built from the same database (make bench)
	}
	es, err := elastic.New(elastic.Config{URL: searchtest.ElasticURL(b), Index: index,
		Facets: search.DefaultConfig()})
	if err != nil {
		return nil, err
	}
	if err := es.Do(ctx, "DELETE", "/bench_t_*?expand_wildcards=all", nil, nil); err != nil {
		return nil, err
	}
	ix := New(es, pool, Options{Controls: relevance.NewControls(pool), Log: searchtest.QuietLog, SwapGrace: 100 * time.Millisecond})
	if err := feed.New(pool, feed.Options{}).Register(ctx, DefaultConsumer); err != nil {
		return nil, err
	}
	if err := ix.Ensure(ctx); err != nil {
		return nil, err
	}
	return &benchEnv{pool: pool, ix: ix, es: es, n: n}, nil
}

// BenchmarkElasticReindex rebuilds the whole index once per iteration.
func BenchmarkElasticReindex(b *testing.B) {
	env := benchSetup(b)
	var docs int
	var loadRate []float64
	b.ResetTimer()
	for range b.N {
		st, err := env.ix.Reindex(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		docs += st.Documents
		loadRate = append(loadRate, st.DocsPerSecond)
	}
	b.ReportMetric(float64(docs)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(slices.Min(loadRate), "min-load-docs/s")
}

// BenchmarkElasticSearch runs the kinds of query with 16 concurrent clients
// (SEARCH_BENCH_CLIENTS) and reports throughput and percentiles of their latency: the
// engine alone, to set beside the same query through the API.
func BenchmarkElasticSearch(b *testing.B) {
	env := benchSetup(b)
	queries := benchQueries(b, env.pool)
	for _, name := range []string{"two-words-all-facets", "misspelled", "category-browse-3-facets", "browse-all-facets"} {
		q := queries[name]
		b.Run(name, func(b *testing.B) {
			lat := searchtest.RunClients(b, searchtest.BenchClients(), func() error {
				_, err := env.es.Search(context.Background(), q)
				return err
			})
			searchtest.ReportPercentiles(b, lat)
		})
	}
}

// benchQueries are (a) a two-word query counting every facet, (b) a misspelled query,
// (c) a category browse with three facets selected (category, brand, material) and (d)
// the faceted browse of the whole catalog (no words, no filter, every facet).
func benchQueries(b *testing.B, pool *pgxpool.Pool) map[string]model.SearchQuery {
	var category, brand string
	err := pool.QueryRow(context.Background(), `
SELECT p.category_id::text, p.brand_id::text FROM products p JOIN categories c ON c.id = p.category_id
 WHERE c.slug = 'dining-tables' AND p.brand_id IS NOT NULL AND p.attributes ->> 'material' = 'oak'
 GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1`).Scan(&category, &brand)
	if err != nil {
		b.Fatalf("bench queries: %v", err)
	}
	return map[string]model.SearchQuery{
		"two-words-all-facets": {Text: "oak table"},
		"misspelled":           {Text: "velvit sofa"},
		"category-browse-3-facets": {Filter: model.SearchFilter{CategoryIDs: []string{category}, BrandIDs: []string{brand},
			Attributes: []model.AttributeFilter{{Key: "material", Values: []string{"oak", "walnut"}}}}},
		"browse-all-facets": {},
	}
}

// BenchmarkElasticSyncLag updates one product per iteration through the store (a
// transaction with its outbox row) while a relay feeds the indexer, and measures the time
// from the commit until a search finds the new version.
func BenchmarkElasticSyncLag(b *testing.B) {
	env := benchSetup(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	searchtest.RunRelay(b, ctx, env.pool, DefaultConsumer, env.ix.Handle, 500)

	rows, err := env.pool.Query(ctx, `SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY id LIMIT 1000`)
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := ids[i%len(ids)]
		price := model.Cents(1000 + i)
		version, err := searchtest.UpdatePrice(ctx, env.pool, id, price)
		if err != nil {
			b.Fatal(err)
		}
		committed := time.Now()
		if err := waitVersion(ctx, env.es, id, version, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(committed))
	}
	searchtest.ReportPercentiles(b, lat)
}

// waitVersion polls searches until the document of id has at least version.
func waitVersion(ctx context.Context, es *elastic.Engine, id string, version int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	body := map[string]any{"size": 1, "_source": false, "version": true,
		"query": map[string]any{"bool": map[string]any{"filter": []any{map[string]any{"ids": map[string]any{"values": []string{id}}}, map[string]any{"range": map[string]any{"version": map[string]any{"gte": version}}}}}}}
	for time.Now().Before(deadline) {
		var ans struct {
			Hits struct {
				Hits []json.RawMessage `json:"hits"`
			} `json:"hits"`
		}
		if err := es.Do(ctx, "POST", "/"+es.Alias()+"/_search", body, &ans); err != nil {
			return err
		}
		if len(ans.Hits.Hits) > 0 {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("version %d of %s not searchable after %s", version, id, limit)
}

// BenchmarkElasticRepricingLag commits a repricing of 10,000 products in one transaction
// (10,000 outbox events, 9,900 of them in the feed's bulk lane), then, while the relay drains
// it, changes one product every 100 ms for 3 seconds and measures how long each change
// takes to become searchable; and how long the repricing takes to drain. The relay runs
// with its default batch sizes. The fast lane keeps the single changes from waiting for
// the backlog: their lag is the index's refresh interval (500 ms) plus a batch or so.
func BenchmarkElasticRepricingLag(b *testing.B) {
	env := benchSetup(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	searchtest.RunRelay(b, ctx, env.pool, DefaultConsumer, env.ix.Handle, 500)
	rows, err := env.pool.Query(ctx, `SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY id DESC LIMIT 30`)
	if err != nil {
		b.Fatal(err)
	}
	singles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		b.Fatal(err)
	}
	seen := newVisibility()
	go seen.watch(ctx, env.es)
	var drain []time.Duration
	var overlapped int // single changes committed while the repricing was still queued
	b.ResetTimer()
	for i := range b.N {
		if _, err := env.pool.Exec(ctx, `
WITH changed AS (
    UPDATE products SET price_cents = price_cents + 1, version = version + 1, updated_at = now()
     WHERE id IN (SELECT id FROM products ORDER BY id LIMIT 10000) RETURNING id, version)
INSERT INTO outbox (aggregate, aggregate_id, kind, version)
SELECT 'product', id::text, 'product.updated', version FROM changed`); err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		for j, id := range singles {
			time.Sleep(time.Until(began.Add(time.Duration(j) * 100 * time.Millisecond)))
			price := model.Cents(5000 + 100*i + j)
			version, err := searchtest.UpdatePrice(ctx, env.pool, id, price)
			if err != nil {
				b.Fatal(err)
			}
			seen.expect(id, version, time.Now())
			if pendingFor(ctx, env.pool) > 1000 {
				overlapped++
			}
		}
		if err := seen.wait(ctx, (i+1)*len(singles), time.Minute); err != nil {
			b.Fatal(err)
		}
		for pendingFor(ctx, env.pool) > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		drain = append(drain, time.Since(began))
	}
	b.StopTimer()
	lag := seen.lags()
	searchtest.ReportPercentiles(b, lag)
	slices.Sort(drain)
	b.ReportMetric(float64(drain[len(drain)/2].Milliseconds()), "10k-drain-p50-ms")
	b.ReportMetric(float64(overlapped)/float64(len(lag)), "share-behind-backlog")
}

// visibility measures how long documents take to become searchable at given versions: one
// search every 20 ms asks for all the documents awaited, so that measuring adds little load.
type visibility struct {
	mu      sync.Mutex
	pending map[string]awaited
	lag     []time.Duration
}

type awaited struct {
	version   int64
	committed time.Time
}

func newVisibility() *visibility { return &visibility{pending: map[string]awaited{}} }

// expect awaits version of document id, committed at committed.
func (v *visibility) expect(id string, version int64, committed time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pending[id] = awaited{version, committed}
}

func (v *visibility) watch(ctx context.Context, es *elastic.Engine) {
	for ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		v.mu.Lock()
		ids := slices.Collect(maps.Keys(v.pending))
		v.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		var ans struct {
			Hits struct {
				Hits []struct {
					ID      string `json:"_id"`
					Version int64  `json:"_version"`
				} `json:"hits"`
			} `json:"hits"`
		}
		body := map[string]any{"size": len(ids), "_source": false, "version": true, "query": map[string]any{"ids": map[string]any{"values": ids}}}
		if err := es.Do(ctx, "POST", "/"+es.Alias()+"/_search", body, &ans); err != nil {
			continue
		}
		now := time.Now()
		v.mu.Lock()
		for _, h := range ans.Hits.Hits {
			if a, ok := v.pending[h.ID]; ok && h.Version >= a.version {
				v.lag = append(v.lag, now.Sub(a.committed))
				delete(v.pending, h.ID)
			}
		}
		v.mu.Unlock()
	}
}

// wait returns once n documents were seen at their versions.
func (v *visibility) wait(ctx context.Context, n int, limit time.Duration) error {
	for deadline := time.Now().Add(limit); ; time.Sleep(20 * time.Millisecond) {
		v.mu.Lock()
		seen, left := len(v.lag), len(v.pending)
		v.mu.Unlock()
		if seen >= n {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d documents not searchable at their versions after %s", left, limit)
		}
	}
}

func (v *visibility) lags() []time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.lag)
}

// pendingFor counts the events queued for the indexer's consumer.
func pendingFor(ctx context.Context, pool *pgxpool.Pool) int {
	var n int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox_pending WHERE consumer = $1`, DefaultConsumer).Scan(&n)
	return n
}
