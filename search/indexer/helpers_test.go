package indexer

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/elastic"
	"github.com/homegoods/storefront/search/relevance"
	"github.com/homegoods/storefront/search/searchtest"
)

var (
	indexCounter atomic.Int64
	// testRunID tells apart test processes that got the same pid.
	testRunID = time.Now().UnixNano() % 1_000_000
)

// newTestAlias returns an alias no other test uses; every index named after it is deleted
// when tb ends.
func newTestAlias(tb testing.TB, es *elastic.Engine) string {
	tb.Helper()
	alias := fmt.Sprintf("t%d_%d_%d_products", os.Getpid(), testRunID, indexCounter.Add(1))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := es.Do(ctx, "DELETE", "/"+alias+"_*?expand_wildcards=all", nil, nil); err != nil {
			tb.Logf("delete test indices %s_*: %v", alias, err)
		}
	})
	return alias
}

// newTestElastic returns an engine on an alias of tb's own (not created yet).
func newTestElastic(tb testing.TB, cfg search.Config) *elastic.Engine {
	tb.Helper()
	url := searchtest.ElasticURL(tb)
	probe, err := elastic.New(elastic.Config{URL: url, Index: "probe", Facets: cfg})
	if err != nil {
		tb.Fatal(err)
	}
	alias := newTestAlias(tb, probe)
	es, err := elastic.New(elastic.Config{URL: url, Index: alias, Facets: cfg})
	if err != nil {
		tb.Fatal(err)
	}
	return es
}

// newTestIndexer returns an indexer on a fresh alias, built from pool.
func newTestIndexer(tb testing.TB, pool *pgxpool.Pool, cfg search.Config) (*Indexer, *elastic.Engine) {
	tb.Helper()
	es := newTestElastic(tb, cfg)
	ix := New(es, pool, Options{Controls: relevance.NewControls(pool), Log: searchtest.TestLog(tb), SwapGrace: 100 * time.Millisecond})
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
