// Package db opens the PostgreSQL pool and applies the embedded schema migrations.
package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Open connects a pool to the database at url, applies configure (nil keeps the defaults)
// and checks that the server answers.
//
// Prepared statements get generic plans unless the url sets plan_cache_mode: the hot
// statements are lookups by a key array (id = ANY($1)), for which PostgreSQL's heuristic
// keeps choosing a custom plan and so plans every execution again; that was a quarter of
// the database's CPU in the product-by-id benchmark. Statements whose best plan depends on
// their values (the filtered product listings) go through the simple protocol instead,
// which plans them with their values every time.
func Open(ctx context.Context, url string, configure func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	pool, err := New(url, configure)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// New is Open without the check: the pool connects when it is first used.
func New(url string, configure func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if _, set := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}
