package db_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/dbtest"
)

// Instances starting together must apply each migration exactly once.
func TestMigrateConcurrentlyAppliesEachMigrationOnce(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewEmptyURL(t), nil)
	ctx := context.Background()

	const n = 4
	applied := make([][]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { applied[i], errs[i] = db.Migrate(ctx, pool) })
	}
	wg.Wait()

	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	versions, err := db.Versions()
	if err != nil {
		t.Fatal(err)
	}
	if total != len(versions) {
		t.Errorf("migrations applied in all: got %d; want %d (one per version)", total, len(versions))
	}
	var recorded int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != len(versions) {
		t.Errorf("recorded migrations: got %d; want %d", recorded, len(versions))
	}

	again, err := db.Migrate(ctx, pool)
	if err != nil || len(again) != 0 {
		t.Errorf("second run: got %v, %v; want nothing applied", again, err)
	}
}

// A failing migration leaves nothing behind: its transaction rolls back and it is not recorded.
func TestMigrationRunsInOneTransaction(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewEmptyURL(t), nil)
	ctx := context.Background()
	// Occupy a name the first migration creates, so that it fails halfway.
	if _, err := pool.Exec(ctx, `CREATE TABLE outbox (id int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx, pool); err == nil {
		t.Fatal("migrate: got nil error; want the clash on table outbox")
	}
	var categories bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('categories') IS NOT NULL`).Scan(&categories); err != nil {
		t.Fatal(err)
	}
	if categories {
		t.Error("table categories exists after a failed migration; want it rolled back")
	}
	var recorded int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != 0 {
		t.Errorf("recorded migrations: got %d; want 0", recorded)
	}
}

// The variant named after an extension the server can create wins; one it does not offer
// falls back to "postgres"; each version is recorded once, with its variant.
func TestMigrateChoosesVariants(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewEmptyURL(t), nil)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"migrations/0001_plain.sql":               {Data: []byte(`CREATE TABLE plain (id int)`)},
		"migrations/0002_trgm.pg_trgm.sql":        {Data: []byte(`CREATE TABLE chosen AS SELECT 'pg_trgm' AS variant`)},
		"migrations/0002_trgm.postgres.sql":       {Data: []byte(`CREATE TABLE chosen AS SELECT 'postgres' AS variant`)},
		"migrations/0003_missing.no_such_ext.sql": {Data: []byte(`CREATE TABLE missing AS SELECT 'no_such_ext' AS variant`)},
		"migrations/0003_missing.postgres.sql":    {Data: []byte(`CREATE TABLE missing AS SELECT 'postgres' AS variant`)},
	}
	applied, err := db.MigrateFS(ctx, pool, fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0001_plain.sql", "0002_trgm.sql (pg_trgm)", "0003_missing.sql (postgres)"}
	if !slices.Equal(applied, want) {
		t.Errorf("applied: got %q; want %q", applied, want)
	}
	for table, variant := range map[string]string{"chosen": "pg_trgm", "missing": "postgres"} {
		var got string
		if err := pool.QueryRow(ctx, `SELECT variant FROM `+table).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != variant {
			t.Errorf("%s ran the %s variant; want %s", table, got, variant)
		}
	}
	var trgm bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')`).Scan(&trgm); err != nil || !trgm {
		t.Errorf("pg_trgm created: %v, %v; want true (the chosen variant's extension)", trgm, err)
	}
	for version, want := range map[string]string{"0001_plain.sql": "", "0002_trgm.sql": "pg_trgm", "0003_missing.sql": "postgres"} {
		got, ok, err := db.AppliedVariant(ctx, pool, version)
		if err != nil || !ok || got != want {
			t.Errorf("AppliedVariant(%s) = %q, %v, %v; want %q, true", version, got, ok, err, want)
		}
	}
	if again, err := db.MigrateFS(ctx, pool, fsys); err != nil || len(again) != 0 {
		t.Errorf("second run: got %v, %v; want nothing applied", again, err)
	}
}

func TestMigrateRefusesBadVariantSets(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewEmptyURL(t), nil)
	for name, files := range map[string][]string{
		"variants without fallback": {"migrations/0001_a.timescaledb.sql"},
		"plain and variants":        {"migrations/0001_a.sql", "migrations/0001_a.postgres.sql"},
	} {
		fsys := fstest.MapFS{}
		for _, f := range files {
			fsys[f] = &fstest.MapFile{Data: []byte(`SELECT 1`)}
		}
		if applied, err := db.MigrateFS(context.Background(), pool, fsys); err == nil {
			t.Errorf("%s: applied %v, no error; want an error", name, applied)
		}
	}
}

// The embedded analytics migration comes in two variants; a server without TimescaleDB (the
// native test server) gets the plain one.
func TestAnalyticsMigrationVariant(t *testing.T) {
	versions, err := db.Versions()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(versions, func(m db.Migration) bool { return m.Version == "0004_analytics.sql" })
	if i < 0 || len(versions[i].Variants) != 2 || versions[i].Variants["timescaledb"] == "" || versions[i].Variants["postgres"] == "" {
		t.Fatalf("0004_analytics.sql: got %+v; want the timescaledb and postgres variants", versions)
	}
	pool := dbtest.New(t)
	ctx := context.Background()
	want := db.FallbackVariant
	var offered bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')`).Scan(&offered); err != nil {
		t.Fatal(err)
	}
	if offered {
		want = "timescaledb"
	}
	variant, ok, err := db.AppliedVariant(ctx, pool, "0004_analytics.sql")
	if err != nil || !ok || variant != want {
		t.Errorf("applied variant: %q, %v, %v; want %q", variant, ok, err, want)
	}
}

// A later version with a variant for the same extension follows the choice recorded for the
// earlier one, whatever the server offers now: 0006_analytics_rollups builds on the relations
// of the 0004_analytics variant that was applied.
func TestMigrateKeepsVariantChoiceAcrossVersions(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewEmptyURL(t), nil)
	ctx := context.Background()
	variants := func(version string) fstest.MapFS {
		return fstest.MapFS{
			"migrations/" + version + ".pg_trgm.sql":  {Data: []byte(`CREATE TABLE t` + version + ` AS SELECT 'pg_trgm' AS variant`)},
			"migrations/" + version + ".postgres.sql": {Data: []byte(`CREATE TABLE t` + version + ` AS SELECT 'postgres' AS variant`)},
		}
	}
	// 0001 ran its fallback when pg_trgm was not offered (recorded by hand here, as the test
	// server offers it); 0002 must follow, though pg_trgm is offered now. 0003 follows 0002.
	if _, err := db.MigrateFS(ctx, pool, fstest.MapFS{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, variant) VALUES ('0001_a.sql', 'postgres')`); err != nil {
		t.Fatal(err)
	}
	fsys := variants("0001_a")
	maps.Copy(fsys, variants("0002_b"))
	maps.Copy(fsys, variants("0003_c"))
	fsys["migrations/0004_d.sql"] = &fstest.MapFile{Data: []byte(`SELECT 1`)}
	maps.Copy(fsys, fstest.MapFS{ // another extension: its own choice
		"migrations/0005_e.pg_trgm.sql":    {Data: []byte(`SELECT 1`)},
		"migrations/0005_e.postgres.sql":   {Data: []byte(`SELECT 1`)},
		"migrations/0005_e.zz_no_such.sql": {Data: []byte(`SELECT 1`)},
		"migrations/0006_f.zz_no_such.sql": {Data: []byte(`SELECT 1`)},
		"migrations/0006_f.postgres.sql":   {Data: []byte(`SELECT 1`)},
		"migrations/0007_g.pg_trgm.sql":    {Data: []byte(`SELECT 1`)},
		"migrations/0007_g.postgres.sql":   {Data: []byte(`SELECT 1`)},
		"migrations/0007_g.zz_no_such.sql": {Data: []byte(`SELECT 1`)},
	})
	applied, err := db.MigrateFS(ctx, pool, fsys)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0002_b.sql (postgres)", "0003_c.sql (postgres)", "0004_d.sql", "0005_e.sql (postgres)",
		"0006_f.sql (postgres)", "0007_g.sql (postgres)"}
	if !slices.Equal(applied, want) {
		t.Errorf("applied: got %q; want %q", applied, want)
	}

	// The other way round: an extension chosen once is chosen again.
	pool = dbtest.Open(t, dbtest.NewEmptyURL(t), nil)
	fsys = variants("0001_a")
	if applied, err := db.MigrateFS(ctx, pool, fsys); err != nil || !slices.Equal(applied, []string{"0001_a.sql (pg_trgm)"}) {
		t.Fatalf("first: %q, %v; want 0001_a.sql (pg_trgm)", applied, err)
	}
	maps.Copy(fsys, variants("0002_b"))
	if applied, err := db.MigrateFS(ctx, pool, fsys); err != nil || !slices.Equal(applied, []string{"0002_b.sql (pg_trgm)"}) {
		t.Errorf("then: %q, %v; want 0002_b.sql (pg_trgm)", applied, err)
	}
}
