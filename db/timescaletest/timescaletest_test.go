package timescaletest_test

// These tests prove the harness from pgx: they share one engine, so none may call t.Parallel.

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/timescaletest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(ctx(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// start is midnight UTC, so that 10,000 minutes fill exactly 7 one-day chunks.
var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

const rows = 10_000

// createReadings makes a hypertable of 1-day chunks holding one reading a minute.
func createReadings(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	exec(t, pool, `CREATE TABLE readings (ts timestamptz NOT NULL, value bigint NOT NULL)`)
	exec(t, pool, `SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'))`)
	ts := make([]time.Time, rows)
	values := make([]int64, rows)
	for i := range ts {
		ts[i] = start.Add(time.Duration(i) * time.Minute)
		values[i] = int64(i*7919%1000) - 300 // deterministic, with negatives
	}
	// unnest arrays rather than COPY: COPY FROM STDIN kills the engine.
	exec(t, pool, `INSERT INTO readings (ts, value) SELECT * FROM unnest($1::timestamptz[], $2::bigint[])`, ts, values)
}

// createHourly makes an hourly continuous aggregate of readings, with real-time aggregation.
func createHourly(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	exec(t, pool, `CREATE MATERIALIZED VIEW readings_hourly
		WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
		SELECT time_bucket('1 hour', ts) AS bucket, count(*) AS n, sum(value) AS total,
		       min(value) AS low, max(value) AS high
		FROM readings GROUP BY bucket WITH NO DATA`)
}

type bucket struct {
	At               time.Time
	N, Total, Lo, Hi int64
}

func buckets(t *testing.T, pool *pgxpool.Pool, sql string) []bucket {
	t.Helper()
	rs, err := pool.Query(ctx(t), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rs, pgx.RowToStructByPos[bucket])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func TestContinuousAggregateMatchesRawData(t *testing.T) {
	pool := timescaletest.Open(t)
	createReadings(t, pool)
	if n := count(t, pool, `SELECT count(*) FROM show_chunks('readings')`); n != 7 {
		t.Errorf("chunks = %d, want 7", n)
	}
	createHourly(t, pool)
	// Materialize the first three days only: the rest must come from real-time aggregation.
	exec(t, pool, `CALL refresh_continuous_aggregate('readings_hourly', $1::timestamptz, $2::timestamptz)`,
		start, start.Add(72*time.Hour))
	if n := count(t, pool, materializedRows(t, pool)); n != 72 {
		t.Errorf("materialized buckets = %d, want 72", n)
	}

	got := buckets(t, pool, `SELECT bucket, n, total, low, high FROM readings_hourly ORDER BY bucket`)
	want := buckets(t, pool, `SELECT time_bucket('1 hour', ts), count(*), sum(value), min(value), max(value)
		FROM readings GROUP BY 1 ORDER BY 1`)
	if len(want) != (rows+59)/60 {
		t.Fatalf("raw buckets = %d, want %d", len(want), (rows+59)/60)
	}
	same := func(a, b bucket) bool {
		return a.At.Equal(b.At) && a.N == b.N && a.Total == b.Total && a.Lo == b.Lo && a.Hi == b.Hi
	}
	if !slices.EqualFunc(got, want, same) {
		t.Fatalf("aggregate differs from raw GROUP BY:\n got %d buckets, first %v\nwant %d buckets, first %v",
			len(got), got[:min(2, len(got))], len(want), want[:min(2, len(want))])
	}
}

// materializedRows returns a query counting the rows materialized for readings_hourly.
func materializedRows(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var schema, table string
	err := pool.QueryRow(ctx(t), `SELECT materialization_hypertable_schema, materialization_hypertable_name
		FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_hourly'`).Scan(&schema, &table)
	if err != nil {
		t.Fatalf("find the materialization hypertable: %v", err)
	}
	return `SELECT count(*) FROM ` + pgx.Identifier{schema, table}.Sanitize()
}

func TestLargeParameterRoundTrips(t *testing.T) {
	pool := timescaletest.Open(t)
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[i*7919%36])
	}
	sent := b.String()
	var got string
	var n int
	// One Bind message far larger than a TCP read: the harness must forward it whole.
	if err := pool.QueryRow(ctx(t), `SELECT $1::text, length($1::text)`, sent).Scan(&got, &n); err != nil {
		t.Fatal(err)
	}
	if got != sent || n != len(sent) {
		t.Fatalf("1 MB parameter came back changed: %d bytes, length %d, want %d", len(got), n, len(sent))
	}
}

func TestMigrationsApply(t *testing.T) {
	pool := timescaletest.Open(t)
	// 0001 creates pg_trgm itself: drop it so that this proves the extension installs.
	exec(t, pool, `DROP EXTENSION pg_trgm`)
	applied, err := db.Migrate(ctx(t), pool)
	if err != nil {
		t.Fatalf("migrate: %v (applied %v)", err, applied)
	}
	t.Logf("applied %v", applied)
	// One row per version, whichever variant (NNNN_name.VARIANT.sql) of it was chosen.
	for _, prefix := range migrationPrefixes(t) {
		if n := count(t, pool, `SELECT count(*) FROM schema_migrations WHERE version LIKE $1 || '\_%'`, prefix); n != 1 {
			t.Errorf("schema_migrations holds %d rows for migration %s, want 1", n, prefix)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM schema_migrations`); n != len(applied) || n != len(migrationPrefixes(t)) {
		t.Errorf("schema_migrations has %d rows, applied %d, want %d", n, len(applied), len(migrationPrefixes(t)))
	}
	if again, err := db.Migrate(ctx(t), pool); err != nil || len(again) != 0 {
		t.Errorf("second migrate applied %v, %v; want nothing", again, err)
	}
	// A gen_random_uuid() default and pg_trgm: the schema works, not only exists.
	var id string
	if err := pool.QueryRow(ctx(t), `INSERT INTO brands (slug, name) VALUES ('oak-works', 'Oak Works') RETURNING id`).Scan(&id); err != nil || len(id) != 36 {
		t.Fatalf("insert a brand: id %q, %v", id, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'`); n != 1 {
		t.Errorf("pg_trgm installed %d times, want 1", n)
	}
}

// migrationPrefixes lists the distinct NNNN numbers of the embedded migration files.
func migrationPrefixes(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("list migrations: %v %v", names, err)
	}
	var prefixes []string
	for _, n := range names {
		prefix, _, _ := strings.Cut(path.Base(n), "_")
		prefixes = append(prefixes, prefix)
	}
	slices.Sort(prefixes)
	return slices.Compact(prefixes)
}

func TestResetLeavesNothingBehind(t *testing.T) {
	pool := timescaletest.Open(t)
	createReadings(t, pool)
	createHourly(t, pool)
	var job int
	if err := pool.QueryRow(ctx(t), `SELECT add_continuous_aggregate_policy('readings_hourly',
		start_offset => INTERVAL '30 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour')`).Scan(&job); err != nil {
		t.Fatalf("add policy: %v", err)
	}
	exec(t, pool, `CALL run_job($1)`, job)
	exec(t, pool, `CREATE SCHEMA scratch`)
	exec(t, pool, `CREATE TABLE scratch.t (x int)`)
	if _, err := db.Migrate(ctx(t), pool); err != nil { // enums, functions, triggers, views
		t.Fatalf("migrate: %v", err)
	}
	exec(t, pool, `SET statement_timeout = '1234s'`)

	pool = timescaletest.Open(t) // closes the first pool, then resets
	checks := map[string]string{
		"jobs":        `SELECT count(*) FROM timescaledb_information.jobs WHERE job_id >= 1000`,
		"hypertables": `SELECT count(*) FROM timescaledb_information.hypertables`,
		"caggs":       `SELECT count(*) FROM timescaledb_information.continuous_aggregates`,
		"chunks":      `SELECT count(*) FROM timescaledb_information.chunks`,
		"public rels": `SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace`,
		"job stats":   `SELECT count(*) FROM timescaledb_information.job_stats WHERE job_id >= 1000`,
		"internal rels": `SELECT count(*) FROM pg_class c WHERE relnamespace = '_timescaledb_internal'::regnamespace
			AND relkind <> 'i' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
			AND d.objid = c.oid AND d.deptype = 'e')`, // chunks, materialization tables
		"user schemas": `SELECT count(*) FROM pg_namespace WHERE nspname = 'scratch'`,
		"types": `SELECT count(*) FROM pg_type t WHERE typnamespace = 'public'::regnamespace AND typtype IN ('e', 'd', 'r')
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')`,
		"routines": `SELECT count(*) FROM pg_proc p WHERE pronamespace = 'public'::regnamespace
			AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')`,
		"session setting": `SELECT count(*) FROM pg_settings WHERE name = 'statement_timeout' AND setting <> '0'`,
	}
	for what, sql := range checks {
		if n := count(t, pool, sql); n != 0 {
			t.Errorf("after reset, %s: %d left", what, n)
		}
	}
	// A fresh hypertable and aggregate work again, with the same names.
	createReadings(t, pool)
	createHourly(t, pool)
	exec(t, pool, `CALL refresh_continuous_aggregate('readings_hourly', NULL, NULL)`)
	if n := count(t, pool, `SELECT count(*) FROM readings_hourly`); n != (rows+59)/60 {
		t.Errorf("hourly buckets after reset = %d, want %d", n, (rows+59)/60)
	}
}

// TestSessionIsFresh: every connection starts clean although the engine has one session:
// no open transaction, prepared statement, temp table or setting of the previous client.
func TestSessionIsFresh(t *testing.T) {
	pool := timescaletest.Open(t)
	conn, err := pool.Acquire(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{`CREATE TEMP TABLE leftover (x int)`, `BEGIN`, `SET LOCAL TimeZone = 'Asia/Tokyo'`} {
		if _, err := conn.Exec(ctx(t), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Same SQL in both pools: pgx names its prepared statement after the SQL (42P05 if kept).
	var one int
	if err := conn.QueryRow(ctx(t), `SELECT $1::int`, 1).Scan(&one); err != nil {
		t.Fatal(err)
	}
	conn.Release()
	pool.Close() // leaves the transaction open: the harness must roll it back

	pool = timescaletest.Open(t)
	if err := pool.QueryRow(ctx(t), `SELECT $1::int`, 1).Scan(&one); err != nil {
		t.Fatalf("prepared statement of the previous client: %v", err)
	}
	var tz, path string
	var temp int
	err = pool.QueryRow(ctx(t), `SELECT current_setting('TimeZone'), current_setting('search_path'),
		(SELECT count(*) FROM pg_class WHERE relname = 'leftover')`).Scan(&tz, &path, &temp)
	if err != nil {
		t.Fatal(err)
	}
	if tz != "UTC" || path != "public" || temp != 0 {
		t.Errorf("TimeZone %q, search_path %q, temp tables %d; want UTC, public, 0", tz, path, temp)
	}
}

// TestQueryExecModes runs a parameterized query in every pgx mode, then reads a large result.
func TestQueryExecModes(t *testing.T) {
	pool := timescaletest.Open(t)
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for _, mode := range modes {
		var got time.Time
		if err := pool.QueryRow(ctx(t), `SELECT $1::timestamptz + INTERVAL '1 hour'`, mode, start).Scan(&got); err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if !got.Equal(start.Add(time.Hour)) {
			t.Errorf("%v: got %v, want %v", mode, got, start.Add(time.Hour))
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM (SELECT g, md5(g::text) FROM generate_series(1, 200000) g) s`); n != 200_000 {
		t.Errorf("count = %d", n)
	}
	rs, err := pool.Query(ctx(t), `SELECT g, md5(g::text) FROM generate_series(1, 200000) g`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rs, pgx.RowToStructByPos[struct {
		N   int64
		Md5 string
	}])
	if err != nil || len(got) != 200_000 || got[199_999].N != 200_000 {
		t.Fatalf("200k-row result: %d rows, %v", len(got), err)
	}
}

// TestCopyFromIsRefused: COPY FROM STDIN would crash the engine; the harness turns it into
// an error and the engine goes on.
func TestCopyFromIsRefused(t *testing.T) {
	pool := timescaletest.Open(t)
	exec(t, pool, `CREATE TABLE c (x int)`)
	_, err := pool.CopyFrom(ctx(t), pgx.Identifier{"c"}, []string{"x"}, pgx.CopyFromRows([][]any{{1}}))
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "0A000" {
		t.Fatalf("CopyFrom: %v, want SQLSTATE 0A000", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM c`); n != 0 {
		t.Errorf("rows = %d, want 0", n)
	}
}
