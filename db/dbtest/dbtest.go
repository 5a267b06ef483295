// Package dbtest gives tests a fresh, migrated PostgreSQL database of their own on the real
// server that `make test` starts.
package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
)

// AdminURLEnv names the variable holding a superuser URL of the test server.
const AdminURLEnv = "TEST_DATABASE_URL"

// RequireEnv, when set to 1 (as `make test` does), turns a missing server into a failure.
const RequireEnv = "STOREFRONT_REQUIRE_SERVICES"

var counter atomic.Int64

// AdminURL returns the test server's superuser URL, or skips tb (fails it under make test)
// when there is none.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(AdminURLEnv)
	if url != "" {
		return url
	}
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s is not set: the PostgreSQL that `make test` starts is required", AdminURLEnv)
	}
	tb.Skipf("needs PostgreSQL: run `make test`, or set %s to a superuser URL", AdminURLEnv)
	return ""
}

// NewURL creates a database for tb, a copy of a migrated template, drops it when tb ends and
// returns its URL.
func NewURL(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, true)
}

// NewEmptyURL creates an empty database (no migrations) for tb, dropped when tb ends.
func NewEmptyURL(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, false)
}

func newDatabase(tb testing.TB, migrated bool) string {
	tb.Helper()
	admin := AdminURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	options := ""
	if migrated {
		template, err := ensureTemplate(ctx, conn, admin)
		if err != nil {
			tb.Fatalf("prepare template database: %v", err)
		}
		options = " TEMPLATE " + template
	}
	return createDatabase(ctx, tb, conn, admin, options)
}

func createDatabase(ctx context.Context, tb testing.TB, conn *pgx.Conn, admin, options string) string {
	tb.Helper()
	name := fmt.Sprintf("t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, counter.Add(1))
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name+options); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() { dropDatabase(tb, admin, name) })
	return withDatabase(admin, name)
}

// New returns a pool on a fresh migrated database for tb, closed when tb ends.
func New(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return Open(tb, NewURL(tb), nil)
}

// Open opens a pool on url, closed when tb ends.
func Open(tb testing.TB, url string, configure func(*pgxpool.Config)) *pgxpool.Pool {
	tb.Helper()
	pool, err := db.Open(context.Background(), url, configure)
	if err != nil {
		tb.Fatalf("open test database: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// ensureTemplate creates and migrates the template database for the current migrations once
// per server: its name carries a hash of the migration files, so a changed migration gets a
// new template. An advisory lock keeps test packages running in parallel from racing.
func ensureTemplate(ctx context.Context, conn *pgx.Conn, admin string) (string, error) {
	name := "storefront_tmpl_" + migrationsHash()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		return "", err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(4242)`) //nolint:errcheck // released with the session anyway

	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+building); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		return "", err
	}
	pool, err := db.Open(ctx, withDatabase(admin, building), nil)
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", err
	}
	// Renaming only once migrated means a half-built template is never copied. No session
	// may connect to it afterwards, autovacuum's included: CREATE DATABASE refuses to copy a
	// template that anyone is connected to.
	if _, err = conn.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s WITH ALLOW_CONNECTIONS false`, building)); err != nil {
		return "", err
	}
	_, err = conn.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, building, name))
	return name, err
}

func migrationsHash() string {
	h := sha256.New()
	err := fs.WalkDir(db.Migrations, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(db.Migrations, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func dropDatabase(tb testing.TB, admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Logf("drop test database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)); err != nil {
		tb.Logf("drop test database %s: %v", name, err)
	}
}

// withDatabase replaces the database name in a postgres:// URL.
func withDatabase(url, name string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		panic(fmt.Sprintf("bad %s: %v", AdminURLEnv, err))
	}
	rest := ""
	if i := strings.Index(url, "?"); i >= 0 {
		rest = url[i:]
	}
	return fmt.Sprintf("postgres://%s:%s@%s:%d/%s%s", cfg.User, cfg.Password, cfg.Host, cfg.Port, name, rest)
}
