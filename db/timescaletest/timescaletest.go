// Package timescaletest gives tests a TimescaleDB engine: the WASM PostgreSQL 17 + TimescaleDB
// that scripts/timescale.sh serves (tools/pglite). The engine is one database with a single
// session, shared by every test: tests using it must not run in parallel, and hold one pool
// (one connection) at a time. It is for the TimescaleDB SQL path (hypertables, continuous
// aggregates, refresh); concurrency, locking, COPY, the job scheduler and query plans are
// tested on native PostgreSQL (db/dbtest).
package timescaletest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/dbtest"
)

// URLEnv names the variable holding the URL of the engine that scripts/timescale.sh serves.
const URLEnv = "TEST_TIMESCALE_URL"

// URL returns the engine's URL, or skips tb (fails it when dbtest.RequireEnv is 1, as under
// `make test`) when there is none.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(URLEnv)
	if url != "" {
		return url
	}
	if os.Getenv(dbtest.RequireEnv) == "1" {
		tb.Fatalf("%s is not set: the TimescaleDB engine that `make test` starts is required", URLEnv)
	}
	tb.Skipf("needs the TimescaleDB engine: run `scripts/timescale.sh start .run/test-timescale 5440` "+
		"and set %s=$(scripts/timescale.sh url 5440)", URLEnv)
	return ""
}

// openTimeout bounds connecting: the engine queues a connection while another client holds
// it, so a pool left open elsewhere shows up as this timeout rather than as a hang.
const openTimeout = 2 * time.Minute

var (
	mu      sync.Mutex
	current *pgxpool.Pool // the pool of the last Open
)

// Open empties the engine's database (see Reset) and returns a pool on it with one
// connection, closed when tb ends. Any pool of an earlier Open is closed first: the engine
// serves one connection at a time, so a second one would wait for the first forever.
func Open(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	url := URL(tb)
	holdEngine(tb, url)
	closePrevious(tb)
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	pool, err := db.Open(ctx, url, func(cfg *pgxpool.Config) { cfg.MaxConns = 1 })
	if err != nil {
		tb.Fatalf("open the TimescaleDB engine at %s (is another pool of it still open?): %v", url, err)
	}
	mu.Lock()
	current = pool
	mu.Unlock()
	tb.Cleanup(pool.Close)
	if err := Reset(ctx, pool); err != nil {
		tb.Fatalf("reset the TimescaleDB engine: %v", err)
	}
	return pool
}

// engineLock is this process's hold on the engine, taken by its first Open.
var engineLock struct {
	sync.Once
	err error
}

// holdEngine makes the test binaries of several packages, which go test runs at once, take
// turns on the one engine: the first Open of a process waits for an exclusive lock on a
// file named after the engine, and the process keeps it until it exits.
func holdEngine(tb testing.TB, url string) {
	tb.Helper()
	engineLock.Do(func() {
		sum := sha256.Sum256([]byte(url))
		path := filepath.Join(os.TempDir(), "storefront-timescale-"+hex.EncodeToString(sum[:8])+".lock")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			engineLock.err = err
			return
		}
		// f stays open, and the lock held, for the life of the process.
		engineLock.err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	})
	if engineLock.err != nil {
		tb.Fatalf("take the TimescaleDB engine's lock: %v", engineLock.err)
	}
}

// closePrevious closes the pool of the previous Open, unless its connection is in use (a
// parent test in a transaction, say), which would deadlock: then it fails tb.
func closePrevious(tb testing.TB) {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if current == nil {
		return
	}
	// A connection released inside a transaction is closed in the background and counts as
	// acquired meanwhile: give it a moment.
	for deadline := time.Now().Add(time.Second); current.Stat().AcquiredConns() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if current.Stat().AcquiredConns() > 0 {
		tb.Fatalf("timescaletest.Open: the pool of an earlier Open still holds the engine's only connection")
	}
	current.Close()
	current = nil
}

// resetSQL drops everything tests and migrations create, keeping the timescaledb extension:
// the engine has a single session for its whole life, and TimescaleDB cannot be created again
// in a session that has loaded it ("extension "timescaledb" has already been loaded"), so
// DROP SCHEMA public CASCADE (which takes the extension with it) is not an option. Instead:
// jobs, continuous aggregates and hypertables go through TimescaleDB, then every other schema,
// then whatever in public is not part of an extension.
const resetSQL = `
DO $reset$
DECLARE
    r record;
BEGIN
    PERFORM delete_job(job_id) FROM timescaledb_information.jobs WHERE job_id >= 1000;
    -- Newest first (by the number ending the name): an aggregate on an aggregate goes before
    -- its source.
    FOR r IN SELECT view_schema, view_name FROM timescaledb_information.continuous_aggregates
             ORDER BY length(materialization_hypertable_name) DESC, materialization_hypertable_name DESC LOOP
        EXECUTE format('DROP MATERIALIZED VIEW IF EXISTS %I.%I CASCADE', r.view_schema, r.view_name);
    END LOOP;
    FOR r IN SELECT hypertable_schema, hypertable_name FROM timescaledb_information.hypertables LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I.%I CASCADE', r.hypertable_schema, r.hypertable_name);
    END LOOP;
    FOR r IN SELECT n.nspname FROM pg_namespace n
             WHERE n.nspname NOT IN ('public', 'pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\_%'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                                AND d.objid = n.oid AND d.deptype = 'e') LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname);
    END LOOP;
    FOR r IN SELECT c.relname, CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                 WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE'
                 ELSE 'TABLE' END AS kind
             FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                AND d.objid = c.oid AND d.deptype = 'e') LOOP
        EXECUTE format('DROP %s IF EXISTS public.%I CASCADE', r.kind, r.relname);
    END LOOP;
    FOR r IN SELECT t.typname FROM pg_type t
             WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                                AND d.objid = t.oid AND d.deptype = 'e') LOOP
        EXECUTE format('DROP TYPE IF EXISTS public.%I CASCADE', r.typname);
    END LOOP;
    FOR r IN SELECT format('public.%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid)) AS sig,
                 CASE p.prokind WHEN 'a' THEN 'AGGREGATE'
                 WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS kind
             FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                AND d.objid = p.oid AND d.deptype = 'e') LOOP
        -- IF EXISTS: a CASCADE above may have dropped it already.
        EXECUTE format('DROP %s IF EXISTS %s CASCADE', r.kind, r.sig);
    END LOOP;
END
$reset$;
CREATE SCHEMA IF NOT EXISTS public;
CREATE EXTENSION IF NOT EXISTS pg_trgm`

// Reset empties the engine's database: it drops every schema but public, every TimescaleDB
// job, continuous aggregate and hypertable, and every table, view, sequence, type and routine
// in public that no extension owns, leaving the timescaledb and pg_trgm extensions in place,
// as a freshly started engine has them. Tests must not drop the timescaledb extension: it
// cannot be created again without restarting the engine.
func Reset(ctx context.Context, pool *pgxpool.Pool) error {
	var exists bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')`).Scan(&exists)
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("the timescaledb extension was dropped: restart the engine (scripts/timescale.sh stop, then start)")
	}
	// No arguments: pgx sends it as one simple-protocol Query, so the statements run in order.
	_, err = pool.Exec(ctx, resetSQL)
	return err
}
