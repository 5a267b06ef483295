package feed

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/db"
)

// Maintenance counts what one round of Maintain did.
type Maintenance struct {
	Retired []string // consumers switched off for want of a relay
	Dropped int      // queued events of retired consumers deleted
	Pruned  int      // delivered outbox rows deleted
}

// Maintain is the worker that keeps the feed's tables bounded: on one instance at a time, every
// MaintainEvery, it retires idle consumers and prunes delivered events (see MaintainOnce).
func (f *Feed) Maintain(ctx context.Context) error {
	return db.LeadEvery(ctx, f.pool, db.LockFeedMaintenance, f.opts.MaintainEvery, f.log, func(ctx context.Context) error {
		m, err := f.MaintainOnce(ctx)
		if err != nil {
			return err
		}
		if len(m.Retired) > 0 || m.Dropped > 0 || m.Pruned > 0 {
			f.log.Info("feed: maintained", "retired", m.Retired, "dropped", m.Dropped, "pruned", m.Pruned)
		}
		return nil
	})
}

// MaintainOnce retires the consumers nobody has seen for ConsumerTimeout, deletes the queues
// of retired consumers, and deletes the outbox rows that no queue holds and that are older
// than Retain.
func (f *Feed) MaintainOnce(ctx context.Context) (Maintenance, error) {
	var m Maintenance
	rows, err := f.pool.Query(ctx, `
UPDATE outbox_consumers SET active = false
WHERE active AND seen_at < now() - $1::interval RETURNING name`, f.opts.ConsumerTimeout)
	if err == nil {
		m.Retired, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return m, fmt.Errorf("retire idle consumers: %w", err)
	}
	for _, name := range m.Retired {
		f.log.Warn("feed: consumer retired: no relay seen for a while; its queue is dropped and it will resync when it is back",
			"consumer", name, "timeout", f.opts.ConsumerTimeout)
	}
	if m.Dropped, err = f.dropRetiredQueues(ctx); err != nil {
		return m, fmt.Errorf("drop queues of retired consumers: %w", err)
	}
	if m.Pruned, err = f.inChunks(ctx, pruneSQL, chunk, f.opts.Retain); err != nil {
		return m, fmt.Errorf("prune outbox: %w", err)
	}
	return m, nil
}

// chunk is how many rows one statement of maintenance deletes, so that no statement holds
// many locks or runs long.
const chunk = 5000

// dropQueueSQL deletes a chunk of consumer $2's queue, by its primary key (see pruneSQL for
// the array).
const dropQueueSQL = `
DELETE FROM outbox_pending WHERE consumer = $2 AND outbox_id = ANY(ARRAY(
    SELECT outbox_id FROM outbox_pending WHERE consumer = $2 ORDER BY outbox_id LIMIT $1))`

// dropRetiredQueues deletes the queues of retired consumers, also what transactions that
// still saw a consumer active queued for it, and returns how many events it deleted.
func (f *Feed) dropRetiredQueues(ctx context.Context) (int, error) {
	rows, err := f.pool.Query(ctx, `SELECT name FROM outbox_consumers WHERE NOT active`)
	if err != nil {
		return 0, err
	}
	retired, err := pgx.CollectRows(rows, pgx.RowTo[string])
	total := 0
	for _, name := range retired {
		n, err := f.inChunks(ctx, dropQueueSQL, chunk, name)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, err
}

// pruneSQL deletes a chunk of the oldest outbox rows that every consumer is past. The ids
// go through an array so that the delete looks each one up by its key: an IN (subquery)
// lets the planner scan the whole outbox for every chunk.
const pruneSQL = `
DELETE FROM outbox WHERE id = ANY(ARRAY(
    SELECT o.id FROM outbox o
    WHERE o.created_at < now() - $2::interval
      AND NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.outbox_id = o.id)
    ORDER BY o.id LIMIT $1))`

// inChunks runs a delete of at most chunk rows (its first argument) until it deletes less,
// and returns how many rows it deleted in all.
func (f *Feed) inChunks(ctx context.Context, sql string, args ...any) (int, error) {
	total := 0
	for {
		tag, err := f.pool.Exec(ctx, sql, args...)
		if err != nil {
			return total, err
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < chunk {
			return total, nil
		}
	}
}

// Backlog is the state of one consumer's queue.
type Backlog struct {
	Consumer string
	Active   bool
	Pending  int
	// OldestAge is the age of the oldest undelivered event (zero with none).
	OldestAge time.Duration
}

// Backlogs reports every registered consumer's queue, for /metrics.
func (f *Feed) Backlogs(ctx context.Context) ([]Backlog, error) {
	rows, err := f.pool.Query(ctx, `
SELECT c.name, c.active, count(p.outbox_id)::int, coalesce(now() - min(o.created_at), '0')
FROM outbox_consumers c
LEFT JOIN outbox_pending p ON p.consumer = c.name
LEFT JOIN outbox o ON o.id = p.outbox_id
GROUP BY c.name, c.active ORDER BY c.name`)
	if err != nil {
		return nil, fmt.Errorf("feed backlogs: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Backlog])
}
