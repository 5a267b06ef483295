package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/seed"
)

func applyMigrations(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	applied, err := db.Migrate(ctx, pool)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log.Info("migrations applied", "new", applied)
	return nil
}

// migrate applies the migrations and exits.
func migrate(ctx context.Context, cfg config, log *slog.Logger) error {
	pool, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	return applyMigrations(ctx, pool, log)
}

// seedCatalog loads a deterministic demo catalog.
func seedCatalog(ctx context.Context, cfg config, log *slog.Logger, args []string, progress io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	products := fs.Int("products", 3000, "number of products")
	seedValue := fs.Int64("seed", 1, "random seed: the same seed gives the same catalog")
	ifEmpty := fs.Bool("if-empty", false, "do nothing when the catalog has products")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pool, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := applyMigrations(ctx, pool, log); err != nil {
		return err
	}
	stats, err := seed.Catalog(ctx, pool, seed.Options{Products: *products, Seed: *seedValue, IfEmpty: *ifEmpty, Progress: progress})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if stats.Skipped {
		log.Info("seed skipped: the catalog has products already")
		return nil
	}
	log.Info("seeded", "products", stats.Products, "categories", stats.Categories, "brands", stats.Brands,
		"warehouses", stats.Warehouses, "inventory_rows", stats.InventoryRows, "elapsed", stats.Elapsed.Round(time.Millisecond))
	return nil
}

// printToken prints a signed development token.
func printToken(cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "merchandiser", "merchandiser or customer")
	customer := fs.String("customer", "", "the customer id of a customer token")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	token, err := resolvers.NewAuth([]byte(cfg.JWTSecret)).Token(model.Role(strings.ToUpper(*role)), *customer, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}
