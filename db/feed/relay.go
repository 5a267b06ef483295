package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
)

// Relay returns the worker that relays the feed to c: it registers c, keeps it marked seen,
// and stands by or leads (see db.Lead) until ctx ends. Run it under the supervisor, which
// restarts it after a failed batch or a lost connection.
func (f *Feed) Relay(c Consumer) func(ctx context.Context) error {
	if c.Poll <= 0 {
		c.Poll = f.opts.Poll
	}
	return func(ctx context.Context) error {
		if err := f.Register(ctx, c.Name); err != nil {
			return err
		}
		ctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { f.heartbeat(ctx, c.Name) })
		defer wg.Wait()
		defer stop()
		log := f.log.With("relay", c.Name)
		return db.Lead(ctx, f.pool, db.RelayLock(c.Name), c.Poll, log, func(ctx context.Context, conn *pgx.Conn) error {
			return f.lead(ctx, c, conn)
		})
	}
}

// lead is the leader's work: resync when needed, drain, then wait for a notification.
func (f *Feed) lead(ctx context.Context, c Consumer, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `LISTEN outbox`); err != nil {
		return err
	}
	for {
		if err := f.resync(ctx, c); err != nil {
			return err
		}
		if err := f.drain(ctx, c); err != nil {
			return err
		}
		if err := wait(ctx, conn, c.Poll); err != nil {
			return err
		}
	}
}

// resync runs c's Resync when c is behind its epoch or says it lost its copy, then records
// the epoch it synced. An epoch that moves on meanwhile (c retired and back again) is left
// for the next turn.
func (f *Feed) resync(ctx context.Context, c Consumer) error {
	var epoch, synced int64
	err := f.pool.QueryRow(ctx, `SELECT epoch, synced_epoch FROM outbox_consumers WHERE name = $1`, c.Name).Scan(&epoch, &synced)
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.Name, err)
	}
	lost := false
	if c.NeedsResync != nil {
		if lost, err = c.NeedsResync(ctx); err != nil {
			return fmt.Errorf("consumer %s: %w", c.Name, err)
		}
	}
	if synced >= epoch && !lost {
		return nil
	}
	if c.Resync != nil {
		f.log.Info("feed: resyncing consumer", "consumer", c.Name, "epoch", epoch, "lost", lost)
		if err := c.Resync(ctx); err != nil {
			return fmt.Errorf("resync %s: %w", c.Name, err)
		}
	}
	_, err = f.pool.Exec(ctx, `UPDATE outbox_consumers SET synced_epoch = greatest(synced_epoch, $2) WHERE name = $1`, c.Name, epoch)
	return err
}

// drain delivers every pending event of c: the fast lane whenever it has events, the bulk
// lane a batch at a time in between.
func (f *Feed) drain(ctx context.Context, c Consumer) error {
	for {
		n, err := f.deliver(ctx, c, fastLaneSQL, f.opts.BatchSize)
		if err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if n, err = f.deliver(ctx, c, anyLaneSQL, f.opts.BulkBatchSize); err != nil || n == 0 {
			return err
		}
	}
}

// fastLaneSQL picks the oldest fast-lane events with the older bulk-lane events of the same
// entities, so that no entity's event is handled before an older one of it.
const fastLaneSQL = `
WITH fast AS (
    SELECT outbox_id FROM outbox_pending
    WHERE consumer = $1 AND NOT bulk
    ORDER BY outbox_id LIMIT $2
), entities AS (
    SELECT DISTINCT o.aggregate, o.aggregate_id FROM fast JOIN outbox o ON o.id = fast.outbox_id
), picked AS (
    SELECT outbox_id FROM fast
    UNION
    SELECT p.outbox_id FROM entities e
    JOIN outbox o ON o.aggregate = e.aggregate AND o.aggregate_id = e.aggregate_id
                 AND o.id < (SELECT max(outbox_id) FROM fast)
    JOIN outbox_pending p ON p.consumer = $1 AND p.outbox_id = o.id AND p.bulk
)
SELECT o.id, o.aggregate, o.aggregate_id, o.kind, o.version, o.payload, o.created_at
FROM outbox_pending p JOIN outbox o ON o.id = p.outbox_id
WHERE p.consumer = $1 AND p.outbox_id IN (SELECT outbox_id FROM picked)
ORDER BY p.outbox_id
FOR UPDATE OF p`

// anyLaneSQL picks the oldest events whatever their lane: with the fast lane empty, the
// next batch of the bulk lane.
const anyLaneSQL = `
SELECT o.id, o.aggregate, o.aggregate_id, o.kind, o.version, o.payload, o.created_at
FROM outbox_pending p JOIN outbox o ON o.id = p.outbox_id
WHERE p.consumer = $1
ORDER BY p.outbox_id
LIMIT $2
FOR UPDATE OF p`

// deliver reads a batch with pick, hands it to c and deletes it from c's queue in one
// transaction, so that a relay killed mid-batch leaves the whole batch to its successor.
// It returns how many events it delivered.
func (f *Feed) deliver(ctx context.Context, c Consumer, pick string, limit int) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, pick, c.Name, limit)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[model.OutboxEvent])
		if err != nil || len(events) == 0 {
			return err
		}
		if err := c.Handle(ctx, events); err != nil {
			return fmt.Errorf("handle %d events: %w", len(events), err)
		}
		ids := make([]int64, len(events))
		for i, e := range events {
			ids[i] = e.ID
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox_pending WHERE consumer = $1 AND outbox_id = ANY($2)`, c.Name, ids); err != nil {
			return err
		}
		if f.opts.BeforeCommit != nil {
			if err := f.opts.BeforeCommit(c.Name, events); err != nil {
				return err
			}
		}
		n = len(events)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("relay %s: %w", c.Name, err)
	}
	return n, nil
}

// wait returns when a notification arrives or after d, whichever is first.
func wait(ctx context.Context, conn *pgx.Conn, d time.Duration) error {
	waitCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := conn.WaitForNotification(waitCtx)
	if err != nil && errors.Is(waitCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		return nil
	}
	return err
}
