package search

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/seed"
)

// ElasticURLEnv names the variable holding the URL of the test search node, which
// `make test` starts with scripts/search.sh.
const ElasticURLEnv = "TEST_ELASTICSEARCH_URL"

var (
	indexCounter atomic.Int64
	// testRunID tells apart test processes that got the same pid.
	testRunID = time.Now().UnixNano() % 1_000_000
)

// elasticURL returns the test node's URL, or skips t (fails it under make test, like
// dbtest.AdminURL) when there is none.
func elasticURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(ElasticURLEnv)
	if url != "" {
		return url
	}
	if os.Getenv(dbtest.RequireEnv) == "1" {
		tb.Fatalf("%s is not set: the search node that `make test` starts is required", ElasticURLEnv)
	}
	tb.Skipf("needs a search node: run `make test`, or start one with `scripts/search.sh start .run/es-dev 9260` and set %s=http://127.0.0.1:9260", ElasticURLEnv)
	return ""
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// testLog logs through t when -v is given, so that a failing pipeline test shows its story.
func testLog(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return quietLog
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}

// newTestAlias returns an alias no other test uses; every index named after it is deleted
// when tb ends.
func newTestAlias(tb testing.TB, es *Elastic) string {
	tb.Helper()
	alias := fmt.Sprintf("t%d_%d_%d_products", os.Getpid(), testRunID, indexCounter.Add(1))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := es.do(ctx, "DELETE", "/"+alias+"_*?expand_wildcards=all", nil, nil); err != nil {
			tb.Logf("delete test indices %s_*: %v", alias, err)
		}
	})
	return alias
}

// newTestElastic returns an engine on an alias of tb's own (not created yet).
func newTestElastic(tb testing.TB, cfg Config, controls *Controls) *Elastic {
	tb.Helper()
	url := elasticURL(tb)
	probe, err := NewElastic(ElasticConfig{URL: url, Index: "probe", Facets: cfg})
	if err != nil {
		tb.Fatal(err)
	}
	alias := newTestAlias(tb, probe)
	es, err := NewElastic(ElasticConfig{URL: url, Index: alias, Facets: cfg, Controls: controls})
	if err != nil {
		tb.Fatal(err)
	}
	return es
}

// seededPool returns a pool on a fresh database holding n seeded products.
func seededPool(tb testing.TB, n int) *pgxpool.Pool {
	tb.Helper()
	pool := dbtest.New(tb)
	if _, err := seed.Catalog(context.Background(), pool, seed.Options{Products: n, Seed: 7}); err != nil {
		tb.Fatalf("seed: %v", err)
	}
	return pool
}

// newTestIndexer returns an indexer on a fresh alias, built from pool.
func newTestIndexer(tb testing.TB, pool *pgxpool.Pool, cfg Config) (*Indexer, *Elastic) {
	tb.Helper()
	controls := NewControls(pool)
	es := newTestElastic(tb, cfg, controls)
	ix := NewIndexer(es, pool, IndexerOptions{Log: testLog(tb), SwapGrace: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Changes committed from now on reach the index through the feed.
	if err := feed.New(pool, feed.Options{}).Register(ctx, DefaultConsumer); err != nil {
		tb.Fatal(err)
	}
	if err := ix.Ensure(ctx); err != nil {
		tb.Fatalf("ensure index: %v", err)
	}
	return ix, es
}
