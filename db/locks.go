package db

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Lock names a PostgreSQL advisory lock. Every lock the server takes is named here, so that
// no two jobs share a key by accident and a reader sees in one place what runs once per fleet.
type Lock string

// The locks of jobs that one instance of the fleet runs at a time.
const (
	LockOrderExpiry      Lock = "order-expiry"      // cancels unpaid orders past their hold
	LockAnalyticsRefresh Lock = "analytics-refresh" // refreshes the sales rollups
	LockFeedMaintenance  Lock = "feed-maintenance"  // prunes the outbox, retires idle consumers
	LockRankingsRebuild  Lock = "rankings-rebuild"  // rebuilds lost rankings from orders
	// LockCategoryTree is taken per transaction by whatever writes category paths (creating
	// or moving a category), so that no path is computed from an ancestor's path that a
	// concurrent move is rewriting.
	LockCategoryTree Lock = "category-tree"
)

// RelayLock is the lock whose holder relays the outbox to consumer.
func RelayLock(consumer string) Lock { return Lock("outbox-relay:" + consumer) }

// SearchRebuildLock is held while the search index behind alias is rebuilt.
func SearchRebuildLock(alias string) Lock { return Lock("search-rebuild:" + alias) }

// SearchReconcileLock is held while the search index behind alias is reconciled.
func SearchReconcileLock(alias string) Lock { return Lock("search-reconcile:" + alias) }

// migrationKey serialises migrators, so that instances starting together apply each
// migration once. It is a fixed number rather than a Lock because
// instances of earlier releases take it by that number.
const migrationKey = 7_246_001

// Key is the lock's 64-bit advisory lock key.
func (l Lock) Key() int64 {
	h := fnv.New64a()
	h.Write([]byte(l))
	return int64(h.Sum64())
}

// Hold runs fn holding l, waiting for it as long as ctx allows. The lock is taken on a
// connection of its own, so that it goes away with the connection if the process dies.
func Hold(ctx context.Context, pool *pgxpool.Pool, l Lock, fn func(context.Context) error) error {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("lock %s: %w", l, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, l.Key()); err != nil {
		return fmt.Errorf("lock %s: %w", l, err)
	}
	return fn(ctx)
}

// TryHold runs fn holding l if nobody holds it, and reports whether it ran.
func TryHold(ctx context.Context, pool *pgxpool.Pool, l Lock, fn func(context.Context) error) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", l, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	got, err := tryLock(ctx, conn, l)
	if err != nil || !got {
		return false, err
	}
	return true, fn(ctx)
}

func tryLock(ctx context.Context, conn *pgx.Conn, l Lock) (bool, error) {
	var got bool
	err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, l.Key()).Scan(&got)
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", l, err)
	}
	return got, nil
}

// Lead elects one leader among the instances that call it with l: it stands by, trying for
// the lock every poll on a connection of its own, and once it has it runs work on that
// connection. Closing the connection, when work returns or the process dies, hands the lock
// to a standby. Lead returns work's error, or ctx's when ctx ends first; run it under a
// supervisor, which stands by again after a backoff.
func Lead(ctx context.Context, pool *pgxpool.Pool, l Lock, poll time.Duration, log *slog.Logger, work func(context.Context, *pgx.Conn) error) error {
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("lead %s: connect: %w", l, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		got, err := tryLock(ctx, conn, l)
		if err != nil {
			return err
		}
		if got {
			break
		}
		if !Sleep(ctx, poll) {
			return ctx.Err()
		}
	}
	log.Info("leading", "lock", string(l))
	return work(ctx, conn)
}

// LeadEvery runs job every interval while this instance leads l (see Lead). A job error
// ends the leadership, so that a standby or a later term tries again.
func LeadEvery(ctx context.Context, pool *pgxpool.Pool, l Lock, every time.Duration, log *slog.Logger, job func(context.Context) error) error {
	return Lead(ctx, pool, l, every, log, func(ctx context.Context, conn *pgx.Conn) error {
		for {
			if err := job(ctx); err != nil {
				return err
			}
			if !Sleep(ctx, every) {
				return ctx.Err()
			}
			// The lock lives with this connection: if it is gone, so is the leadership.
			if err := conn.Ping(ctx); err != nil {
				return fmt.Errorf("lead %s: %w", l, err)
			}
		}
	})
}

// Sleep waits d unless ctx ends first; it reports whether ctx is still alive.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
