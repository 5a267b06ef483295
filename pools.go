package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/homegoods/storefront/db"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// openDB opens a pool of maxConns connections (unless the URL sets pool_max_conns) whose
// sessions start with params (unless the URL sets them); tracer, when not nil, traces its
// queries.
func openDB(ctx context.Context, cfg config, maxConns int32, params map[string]string, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	return db.Open(ctx, cfg.DatabaseURL, func(pc *pgxpool.Config) {
		if !strings.Contains(cfg.DatabaseURL, "pool_max_conns") {
			pc.MaxConns = maxConns
		}
		for k, v := range params {
			if _, set := pc.ConnConfig.RuntimeParams[k]; !set {
				pc.ConnConfig.RuntimeParams[k] = v
			}
		}
		if tracer != nil {
			pc.ConnConfig.Tracer = tracer
		}
	})
}

// writers is DB_WRITERS, by default half of the requests' pool.
func (c config) writers(requests *pgxpool.Pool) int {
	if c.DBWriters > 0 {
		return c.DBWriters
	}
	return max(1, int(requests.Config().MaxConns)/2)
}

// pools are the server's two connection pools. Requests' statements and waits for row locks
// are bounded, so that a lock held elsewhere or a runaway query fails a request in seconds
// (UNAVAILABLE) instead of holding its connection until the pool is empty; background work
// (migrations, refreshes, the change feed, reconciles) may legitimately run for minutes and
// has a pool of its own, which requests never wait for.
type pools struct{ requests, jobs *pgxpool.Pool }

func openPools(ctx context.Context, cfg config, tracer pgx.QueryTracer) (*pools, error) {
	requests, err := openDB(ctx, cfg, cfg.DBMaxConns, map[string]string{
		"statement_timeout": fmt.Sprint(cfg.DBStatementTimeout.Milliseconds()),
		"lock_timeout":      fmt.Sprint(cfg.DBLockTimeout.Milliseconds()),
	}, tracer)
	if err != nil {
		return nil, err
	}
	jobs, err := openDB(ctx, cfg, cfg.DBJobConns, nil, tracer)
	if err != nil {
		requests.Close()
		return nil, err
	}
	return &pools{requests: requests, jobs: jobs}, nil
}

func (p *pools) close() {
	p.requests.Close()
	p.jobs.Close()
}
