package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/search/indexer"
	"github.com/homegoods/storefront/seed"
	"github.com/homegoods/storefront/store"
)

// applyMigrations migrates the database, in the analytics mode ANALYTICS allows (see
// migrationOptions).
func applyMigrations(ctx context.Context, pool *pgxpool.Pool, analytics string, log *slog.Logger) error {
	opts, err := migrationOptions(ctx, pool, analytics, log)
	if err != nil {
		return err
	}
	applied, err := db.MigrateWith(ctx, pool, db.Migrations, opts)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log.Info("migrations applied", "new", applied)
	return nil
}

// migrate applies the migrations and exits; with -print FILE it prints the SQL a migration
// file runs instead (the file rendered, see db.SQL), without connecting.
func migrate(ctx context.Context, cfg config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	file := fs.String("print", "", "print the SQL of this migration file (as named in db/migrations) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file != "" {
		sql, err := db.SQL(db.Migrations, "migrations/"+*file)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, sql)
		return err
	}
	pool, err := openDB(ctx, cfg, cfg.DBMaxConns, nil, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	return applyMigrations(ctx, pool, cfg.AnalyticsMode, log)
}

// seedCatalog loads a deterministic demo catalog and, with --orders, a year of orders.
func seedCatalog(ctx context.Context, cfg config, log *slog.Logger, args []string, progress io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	products := fs.Int("products", 3000, "number of products")
	orders := fs.Int("orders", 0, "also generate a year of this many orders (on the existing catalog, if any)")
	seedValue := fs.Int64("seed", 1, "random seed: the same seed gives the same catalog and history")
	ifEmpty := fs.Bool("if-empty", false, "do nothing when the catalog has products (or, with --orders, when there are orders)")
	factsOnly := fs.Bool("facts-only", false, "with --orders: write the analytics facts alone (benchmarks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pool, err := openDB(ctx, cfg, cfg.DBMaxConns, nil, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := applyMigrations(ctx, pool, cfg.AnalyticsMode, log); err != nil {
		return err
	}
	// Orders are drawn from whatever catalog there is: asking for them never fails on one.
	stats, err := seed.Catalog(ctx, pool, seed.Options{Products: *products, Seed: *seedValue, IfEmpty: *ifEmpty || *orders > 0, Progress: progress})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if stats.Skipped {
		log.Info("catalog seed skipped: the catalog has products already")
	} else {
		log.Info("seeded", "products", stats.Products, "categories", stats.Categories, "brands", stats.Brands,
			"warehouses", stats.Warehouses, "inventory_rows", stats.InventoryRows, "elapsed", stats.Elapsed.Round(time.Millisecond))
	}
	if *orders == 0 {
		return nil
	}
	return seedOrders(ctx, pool, log, seed.OrderOptions{Orders: *orders, Seed: *seedValue, FactsOnly: *factsOnly, Progress: progress}, *ifEmpty)
}

// seedOrders loads a year of orders ending now, unless ifEmpty and there are orders.
func seedOrders(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, opts seed.OrderOptions, ifEmpty bool) error {
	if ifEmpty {
		any, err := seed.HasSales(ctx, pool)
		if err != nil {
			return fmt.Errorf("seed orders: %w", err)
		}
		if any {
			log.Info("order seed skipped: there are sales already")
			return nil
		}
	}
	opts.End = time.Now()
	// Partitions first (plain mode), so that the history goes straight to them.
	end := opts.End.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	if _, _, err := store.New(pool).CreateAnalyticsPartitionsFor(ctx, end.AddDate(-1, 0, -1), end); err != nil {
		return fmt.Errorf("seed orders: %w", err)
	}
	stats, err := seed.Orders(ctx, pool, opts)
	if err != nil {
		return fmt.Errorf("seed orders: %w", err)
	}
	log.Info("seeded orders", "orders", stats.Orders, "lines", stats.Lines, "facts", stats.Facts, "elapsed", stats.Elapsed.Round(time.Millisecond))
	return nil
}

// reindex rebuilds the search index behind its alias; searches go on meanwhile.
func reindex(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	return runIndexer(ctx, cfg, log, stdout, "reindex", (*indexer.Indexer).Reindex)
}

// reconcile repairs the drift between the search index and PostgreSQL and reports it.
func reconcile(ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer) error {
	return runIndexer(ctx, cfg, log, stdout, "reconcile", (*indexer.Indexer).Reconcile)
}

// runIndexer runs one of the indexer's jobs as the command name and prints what it reports.
func runIndexer[R any](ctx context.Context, cfg config, log *slog.Logger, stdout io.Writer, name string, job func(*indexer.Indexer, context.Context) (R, error)) error {
	pool, err := openDB(ctx, cfg, cfg.DBMaxConns, nil, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	ix, err := newIndexer(cfg, pool, log)
	if err != nil {
		return err
	}
	report, err := job(ix, ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	_, err = fmt.Fprintf(stdout, "%+v\n", report)
	return err
}

// printToken prints a signed token, and logs its id (by which it can be revoked) and expiry.
func printToken(cfg config, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "merchandiser", "merchandiser or customer")
	customer := fs.String("customer", "", "the customer id of a customer token")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid, at most JWT_MAX_TTL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.JWTSecret == "" {
		return errNoJWTSecret
	}
	auth := resolvers.NewAuth([]byte(cfg.JWTSecret), resolvers.AuthOptions{MaxTTL: cfg.JWTMaxTTL})
	token, err := auth.Token(model.Role(strings.ToUpper(*role)), *customer, *ttl)
	if err != nil {
		return err
	}
	if p, err := auth.Parse(token); err == nil {
		log.Info("token issued", "id", p.TokenID, "role", p.Role, "expires", p.Expires)
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// revokeToken revokes a token by its id on every server instance that shares the Redis of
// the configuration. Without Redis each server keeps a list of its own: use the
// revokeToken mutation of that server.
func revokeToken(ctx context.Context, cfg config, args []string, log *slog.Logger) error {
	if len(args) != 1 || args[0] == "" {
		return errors.New("usage: storefront revoke TOKEN_ID")
	}
	opts, err := cfg.redisOptions()
	if err != nil {
		return err
	}
	if opts == nil {
		return errors.New("revoke needs REDIS_URL or REDIS_ADDRS: without Redis, each server keeps its own list (use the revokeToken mutation)")
	}
	rdb := redis.NewUniversalClient(opts)
	defer rdb.Close()
	list := cache.NewRedisRevocations(rdb, cfg.RedisPrefix, log)
	if err := resolvers.NewAuth(nil, resolvers.AuthOptions{MaxTTL: cfg.JWTMaxTTL, Revocations: list}).Revoke(ctx, args[0]); err != nil {
		return err
	}
	log.Info("token revoked", "id", args[0])
	return nil
}
