// Package seed bulk-loads a deterministic demo and benchmark catalog: a category tree, brands,
// warehouses, products and their stock, generated from a seed and streamed through COPY.
//
// The same seed gives the same catalog byte for byte (ids, names, prices, stock, timestamps),
// and the first N products of a seed do not depend on how many are asked for. The load runs in
// one transaction and writes no outbox rows: it is a bulk load, and search indexes and caches
// are rebuilt from PostgreSQL afterwards.
package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Options says what to load.
type Options struct {
	Products int   // number of products
	Seed     int64 // same seed, same catalog
	IfEmpty  bool  // do nothing (Stats.Skipped) if the catalog already has rows
	// Progress receives a bar per phase when it is a terminal, a line per phase otherwise;
	// nil keeps the load silent.
	Progress io.Writer
}

// Stats counts what a load wrote.
type Stats struct {
	Categories, Brands, Warehouses, Products, InventoryRows int
	Skipped                                                 bool
	Elapsed                                                 time.Duration
}

// ErrNotEmpty is returned when the catalog already has rows and Options.IfEmpty is false: two
// seeds are never mixed.
var ErrNotEmpty = errors.New("catalog is not empty")

// seedLock is the transaction advisory lock that serialises loaders: a second one started at
// the same time waits, then finds the catalog full.
const seedLock = 7_246_010

const lockCatalog = `SELECT pg_advisory_xact_lock($1)`

// The catalog counts as non-empty as soon as any of its tables has a row: seeding beside
// hand-made categories or warehouses would collide on slugs and codes, or mix two worlds.
const catalogEmpty = `
SELECT NOT (EXISTS (SELECT 1 FROM products) OR EXISTS (SELECT 1 FROM categories)
         OR EXISTS (SELECT 1 FROM brands) OR EXISTS (SELECT 1 FROM warehouses))`

// analyzeCatalog gives the planner statistics at once: without them the first queries after a
// bulk load plan as if the tables were empty, until autovacuum gets round to them.
const analyzeCatalog = `ANALYZE categories, brands, warehouses, products, inventory`

// Catalog loads opts.Products products generated from opts.Seed, with their categories,
// brands, warehouses and stock, in one transaction.
func Catalog(ctx context.Context, pool *pgxpool.Pool, opts Options) (Stats, error) {
	if opts.Products < 0 {
		return Stats{}, fmt.Errorf("products must not be negative, got %d", opts.Products)
	}
	began := time.Now()
	var stats Stats
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		stats, err = load(ctx, tx, opts)
		return err
	})
	if err != nil {
		return Stats{}, err
	}
	stats.Elapsed = time.Since(began)
	return stats, nil
}

func load(ctx context.Context, tx pgx.Tx, opts Options) (Stats, error) {
	if _, err := tx.Exec(ctx, lockCatalog, seedLock); err != nil {
		return Stats{}, fmt.Errorf("lock catalog: %w", err)
	}
	var empty bool
	if err := tx.QueryRow(ctx, catalogEmpty).Scan(&empty); err != nil {
		return Stats{}, fmt.Errorf("check catalog: %w", err)
	}
	switch {
	case !empty && opts.IfEmpty:
		return Stats{Skipped: true}, nil
	case !empty:
		return Stats{}, ErrNotEmpty
	}
	stats, err := copyAll(ctx, tx, newCatalog(opts.Seed), opts)
	if err != nil {
		return Stats{}, err
	}
	if _, err := tx.Exec(ctx, analyzeCatalog); err != nil {
		return Stats{}, fmt.Errorf("analyze: %w", err)
	}
	return stats, nil
}

// copyAll copies the tables in dependency order: categories (parents first), brands,
// warehouses, products, stock.
func copyAll(ctx context.Context, tx pgx.Tx, c *catalog, opts Options) (Stats, error) {
	var s Stats
	n := opts.Products
	phases := []struct {
		table   string
		columns []string
		total   int
		rows    func(*meter) pgx.CopyFromSource
		count   *int
	}{
		{"categories", categoryColumns, len(c.categories), c.categoryRows, &s.Categories},
		{"brands", brandColumns, len(c.brands), c.brandRows, &s.Brands},
		{"warehouses", warehouseColumns, len(c.warehouses), c.warehouseRows, &s.Warehouses},
		{"products", productColumns, n, func(m *meter) pgx.CopyFromSource { return c.productRows(m, n) }, &s.Products},
		{"inventory", stockColumns, n * len(c.warehouses), func(m *meter) pgx.CopyFromSource { return c.stockRows(m, n) }, &s.InventoryRows},
	}
	progress := newProgress(opts.Progress)
	for _, p := range phases {
		m := progress.phase(ctx, p.table, p.total)
		rows, err := tx.CopyFrom(ctx, pgx.Identifier{p.table}, p.columns, p.rows(m))
		if err != nil {
			return Stats{}, fmt.Errorf("copy %s: %w", p.table, err)
		}
		m.done(rows)
		*p.count = int(rows)
	}
	return s, nil
}
