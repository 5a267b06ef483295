// Package dbtest gives tests a fresh, migrated PostgreSQL database of their own on the real
// server that `make test` starts.
package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// The analytics modes of a test database: the variant of the analytics migrations it got.
const (
	TimescaleDB = "timescaledb" // TimescaleDB hypertables and continuous aggregates
	Postgres    = "postgres"    // plain PostgreSQL rollups
)

// NewURL creates a database for tb, a copy of a migrated template, drops it when tb ends and
// returns its URL. Its analytics mode is what migrations choose on the server: TimescaleDB on
// the server of `make test`, which preloads it.
func NewURL(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, "")
}

// NewURLWith is NewURL with the analytics mode TimescaleDB or Postgres. TimescaleDB needs a
// server that preloads it: without one, tb skips (fails under make test). The database's
// TimescaleDB job scheduler runs, as on a real server.
func NewURLWith(tb testing.TB, analytics string) string {
	tb.Helper()
	if analytics != TimescaleDB && analytics != Postgres {
		tb.Fatalf("dbtest: unknown analytics mode %q", analytics)
	}
	return newDatabase(tb, analytics)
}

// NewEmptyURL creates an empty database (no migrations) for tb, dropped when tb ends.
func NewEmptyURL(tb testing.TB) string {
	tb.Helper()
	return newDatabase(tb, "empty")
}

// newDatabase creates a database: "empty", or migrated in an analytics mode ("" for the
// server's default).
func newDatabase(tb testing.TB, mode string) string {
	tb.Helper()
	admin := AdminURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("connect to test server: %v", err)
	}
	defer conn.Close(ctx)
	if mode == "empty" {
		return createDatabase(ctx, tb, conn, admin, "")
	}
	tsdb, err := db.ExtensionStatus(ctx, conn, TimescaleDB)
	if err != nil {
		tb.Fatal(err)
	}
	if mode == "" {
		mode = Postgres
		if tsdb.Usable() {
			mode = TimescaleDB
		}
	}
	if mode == TimescaleDB && !tsdb.Usable() {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("TimescaleDB is required under make test (scripts/pg.sh installs and preloads it): %s", tsdb.Problem())
		}
		tb.Skipf("needs TimescaleDB: %s; run `make test`", tsdb.Problem())
	}
	template, err := ensureTemplate(ctx, conn, admin, mode)
	if err != nil {
		tb.Fatalf("prepare template database: %v", err)
	}
	url := createDatabase(ctx, tb, conn, admin, " TEMPLATE "+template)
	if mode == TimescaleDB {
		startScheduler(ctx, tb, url)
	}
	return url
}

// startScheduler starts the TimescaleDB job scheduler of the database at url: its launcher
// starts one by itself for a database that runs CREATE EXTENSION, not for a copy of one
// (until it next scans the databases, a minute later). The jobs first run one schedule
// interval from now, as in a database just migrated: the template's jobs are long overdue,
// and every test database starting all of its jobs at once would flood the 2 cores with
// background workers.
func startScheduler(ctx context.Context, tb testing.TB, url string) {
	tb.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("connect to test database: %v", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `SELECT alter_job(job_id, next_start => now() + schedule_interval) FROM timescaledb_information.jobs`)
	if err == nil {
		_, err = conn.Exec(ctx, `SELECT _timescaledb_functions.start_background_workers()`)
	}
	if err != nil {
		tb.Fatalf("start the TimescaleDB scheduler: %v", err)
	}
}

func createDatabase(ctx context.Context, tb testing.TB, conn *pgx.Conn, admin, options string) string {
	tb.Helper()
	name := fmt.Sprintf("t_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9, counter.Add(1))
	for {
		_, err := conn.Exec(ctx, `CREATE DATABASE `+name+options)
		if err == nil {
			break
		}
		// TimescaleDB's launcher connects to every database now and then, templates too
		// (its worker leaves at once when it finds one): CREATE DATABASE refuses a template
		// with a session (SQLSTATE 55006). Another try finds it alone.
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" || ctx.Err() != nil {
			tb.Fatalf("create test database: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
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

// templateRecipe names the way ensureTemplate builds a template, so that a server keeping
// templates built the old way gets new ones: change it with that way.
const templateRecipe = "r2"

// ensureTemplate creates and migrates the template database of an analytics mode for the
// current migrations once per server: its name carries a hash of the migration files, so a
// changed migration gets a new template. An advisory lock keeps test packages running in
// parallel from racing.
func ensureTemplate(ctx context.Context, conn *pgx.Conn, admin, mode string) (string, error) {
	name := "storefront_tmpl_" + migrationsHash() + "_" + templateRecipe + "_" + mode
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
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		return "", err
	}
	pool, err := db.Open(ctx, withDatabase(admin, building), nil)
	if err != nil {
		return "", err
	}
	var opts db.Options
	if mode == Postgres {
		opts.Without = []string{TimescaleDB}
	}
	_, err = db.MigrateWith(ctx, pool, db.Migrations, opts)
	if err == nil && mode == TimescaleDB {
		err = stopJobs(ctx, pool)
	}
	pool.Close()
	if err != nil {
		return "", err
	}
	// A template, which TimescaleDB's launcher skips, and one nobody may connect to,
	// autovacuum included: CREATE DATABASE refuses to copy a template that anyone is
	// connected to. Renaming only once migrated means a half-built template is never copied.
	if _, err := conn.Exec(ctx, `ALTER DATABASE `+building+` WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`); err != nil {
		return "", err
	}
	if err := waitAlone(ctx, conn, building); err != nil {
		return "", err
	}
	_, err = conn.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s RENAME TO %s`, building, name))
	return name, err
}

// stopJobs stops the TimescaleDB scheduler of a template being built, as a database being
// copied must have no other session, and forgets what its jobs did: a job that the stop ended
// halfway counts as crashed in every copy, and TimescaleDB then holds it back for at least
// five minutes (MIN_WAIT_AFTER_CRASH_MS in its src/bgw/job_stat.c), whatever next_start says.
func stopJobs(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `SELECT _timescaledb_functions.stop_background_workers()`); err != nil {
		return err
	}
	for {
		var workers int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type <> 'client backend'`).Scan(&workers)
		if err != nil {
			return err
		}
		if workers == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("TimescaleDB workers still running: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, table := range []string{"bgw_job_stat", "bgw_job_stat_history"} {
		if _, err := pool.Exec(ctx, `DELETE FROM _timescaledb_internal.`+table); err != nil {
			return err
		}
	}
	return nil
}

// waitAlone waits until no session is connected to the database name (a stopping scheduler).
func waitAlone(ctx context.Context, conn *pgx.Conn, name string) error {
	for {
		var busy bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = $1)`, name).Scan(&busy); err != nil {
			return err
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sessions still connected to %s: %w", name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
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
