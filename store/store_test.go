package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/seed"
	"github.com/homegoods/storefront/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newCatalog returns a store on a fresh database holding a seeded catalog of n products.
func newCatalog(t *testing.T, n int) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	pool := dbtest.New(t)
	if _, err := seed.Catalog(context.Background(), pool, seed.Options{Products: n, Seed: 3}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return store.New(pool), pool
}

// mustIDs runs a query returning one text column.
func mustIDs(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return ids
}

func mustCount(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// wantCode fails t unless err carries code (and, when given, argument).
func wantCode(t *testing.T, err error, code model.ErrorCode, argument string) {
	t.Helper()
	var me *model.Error
	if !errors.As(err, &me) {
		t.Fatalf("error: got %v; want a %s error", err, code)
	}
	if me.Code != code || (argument != "" && me.Argument != argument) {
		t.Fatalf("error: got %s at %q (%s); want %s at %q", me.Code, me.Argument, me.Message, code, argument)
	}
}

func ptr[T any](v T) *T { return &v }

func anyCategory(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	return mustIDs(t, pool, `SELECT id::text FROM categories ORDER BY slug LIMIT 1`)[0]
}
