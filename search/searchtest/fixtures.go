package searchtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/seed"
	"github.com/homegoods/storefront/supervisor"
)

// ElasticURLEnv names the variable holding the URL of the test search node, which
// `make test` starts with scripts/search.sh.
const ElasticURLEnv = "TEST_ELASTICSEARCH_URL"

// ElasticURL returns the test node's URL, or skips tb (fails it under make test, like
// dbtest.AdminURL) when there is none.
func ElasticURL(tb testing.TB) string {
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

// QuietLog discards what it is told.
var QuietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestLog logs through tb when -v is given, so that a failing pipeline test shows its story.
func TestLog(tb testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return QuietLog
	}
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Log(string(p))
	return len(p), nil
}

// SeededPool returns a pool on a fresh database holding n seeded products.
func SeededPool(tb testing.TB, n int) *pgxpool.Pool {
	tb.Helper()
	pool := dbtest.New(tb)
	if _, err := seed.Catalog(context.Background(), pool, seed.Options{Products: n, Seed: 7}); err != nil {
		tb.Fatalf("seed: %v", err)
	}
	return pool
}

// RunRelay runs the feed's relay of consumer with handler, under a supervisor that
// restarts it after a failed batch, until ctx ends or the returned stop is called (or the
// test ends); stop waits for it to return.
func RunRelay(tb testing.TB, ctx context.Context, pool *pgxpool.Pool, consumer string, handler feed.Handler, batch int) (stop func()) {
	tb.Helper()
	f := feed.New(pool, feed.Options{BatchSize: batch, Poll: 100 * time.Millisecond, Log: QuietLog})
	ctx, cancel := context.WithCancel(ctx)
	g := supervisor.New(ctx, supervisor.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Log: QuietLog})
	g.Go("relay", f.Relay(feed.Consumer{Name: consumer, Handle: handler}))
	stop = sync.OnceFunc(func() { cancel(); g.Wait() })
	tb.Cleanup(stop)
	return stop
}

// The changes tests make to the catalog are written as the store writes them: the row
// with a new version and its outbox event, in one statement, so that the change feed
// delivers them as it delivers a merchandiser's. (The search packages do not import the
// store: it sits beside them, not below.)
var (
	setPriceSQL = withOutbox("product", "product.updated",
		`UPDATE products SET price_cents = $2, version = version + 1, updated_at = now() WHERE id = $1`, "version")
	archiveSQL = withOutbox("product", "product.archived",
		`UPDATE products SET status = 'ARCHIVED', version = version + 1, updated_at = now() WHERE id = $1`, "version")
	renameCategorySQL = withOutbox("category", "category.updated",
		`UPDATE categories SET name = $2, version = version + 1, updated_at = now() WHERE id = $1`, "version")
	createProductSQL = withOutbox("product", "product.created",
		`INSERT INTO products (sku, slug, name, category_id, price_cents, status) VALUES ($1, $2, $3, $4, $5, 'ACTIVE')`, "id::text")
)

// withOutbox makes mutation (a statement changing one row) record the row in the outbox
// with its new version, in the same statement, and return column of it.
func withOutbox(aggregate, kind, mutation, column string) string {
	return fmt.Sprintf(`WITH changed AS (%s RETURNING *),
logged AS (
    INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload)
    SELECT '%s', changed.id::text, '%s', changed.version, to_jsonb(changed) - 'search_vector' FROM changed)
SELECT %s FROM changed`, mutation, aggregate, kind, column)
}

// UpdatePrice gives product id a new price and returns its new version.
func UpdatePrice(ctx context.Context, pool *pgxpool.Pool, id string, price model.Cents) (int64, error) {
	var version int64
	err := pool.QueryRow(ctx, setPriceSQL, id, int64(price)).Scan(&version)
	return version, err
}

// SetPrice is UpdatePrice that fails tb on an error.
func SetPrice(tb testing.TB, pool *pgxpool.Pool, id string, price model.Cents) int64 {
	tb.Helper()
	return change(tb, pool, setPriceSQL, id, int64(price))
}

// Reprice gives each product a new price, base and up, and returns the prices by id.
func Reprice(tb testing.TB, pool *pgxpool.Pool, ids []string, base int) map[string]int64 {
	tb.Helper()
	out := map[string]int64{}
	for i, id := range ids {
		price := model.Cents(base + i)
		SetPrice(tb, pool, id, price)
		out[id] = int64(price)
	}
	return out
}

// Archive takes product id off the storefront.
func Archive(tb testing.TB, pool *pgxpool.Pool, id string) {
	tb.Helper()
	change(tb, pool, archiveSQL, id)
}

// RenameCategory renames category id.
func RenameCategory(tb testing.TB, pool *pgxpool.Pool, id, name string) {
	tb.Helper()
	change(tb, pool, renameCategorySQL, id, name)
}

// CreateProduct adds an active product and returns its id.
func CreateProduct(tb testing.TB, pool *pgxpool.Pool, sku, slug, name, categoryID string, price model.Cents) string {
	tb.Helper()
	var id string
	if err := pool.QueryRow(context.Background(), createProductSQL, sku, slug, name, categoryID, int64(price)).Scan(&id); err != nil {
		tb.Fatalf("create product %s: %v", sku, err)
	}
	return id
}

func change(tb testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	tb.Helper()
	var version int64
	err := pool.QueryRow(context.Background(), sql, args...).Scan(&version)
	if err == pgx.ErrNoRows {
		tb.Fatalf("%v: no such row", args[0])
	}
	if err != nil {
		tb.Fatalf("change %v: %v", args[0], err)
	}
	return version
}
