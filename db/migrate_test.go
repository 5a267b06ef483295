package db_test

import (
	"context"
	"sync"
	"testing"

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
	files, _ := db.Migrations.ReadDir("migrations")
	if total != len(files) {
		t.Errorf("migrations applied in all: got %d; want %d (one per file)", total, len(files))
	}
	var recorded int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != len(files) {
		t.Errorf("recorded migrations: got %d; want %d", recorded, len(files))
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
