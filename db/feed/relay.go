package feed

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

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

// lead is the leader's work: the fast lane and the bulk lane are drained side by side, so
// that a single change never waits for a bulk batch in flight, and both wake on the outbox's
// notifications (or every Poll). Resyncs run between batches, with both lanes paused.
func (f *Feed) lead(ctx context.Context, c Consumer, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `LISTEN outbox`); err != nil {
		return err
	}
	l := &leader{feed: f, c: c, wake: [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}, lastCheck: time.Now()}
	if err := l.resync(ctx); err != nil { // before anything is relayed
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.listen(ctx, conn) })
	g.Go(func() error { return l.lane(ctx, fast) })
	g.Go(func() error { return l.lane(ctx, bulk) })
	return g.Wait()
}

// The lanes of a consumer's queue (outbox_pending.bulk).
const (
	fast = false
	bulk = true
)

// leader is one term of leadership over a consumer's queue.
type leader struct {
	feed *Feed
	c    Consumer
	wake [2]chan struct{} // per lane: events may be waiting
	// paused is held for writing while a resync runs and for reading by every delivery.
	paused    sync.RWMutex
	lastCheck time.Time // of the resync, by the fast lane only
}

// listen wakes both lanes at every notification of the outbox, and every Poll without one.
func (l *leader) listen(ctx context.Context, conn *pgx.Conn) error {
	for {
		for _, w := range l.wake {
			select {
			case w <- struct{}{}:
			default: // already awake
			}
		}
		if err := wait(ctx, conn, l.c.Poll); err != nil {
			return err
		}
	}
}

// lane drains one lane whenever it is woken. The fast lane also resyncs the consumer when
// needed, at most once per Poll. A lane delivers on a connection of its own: a handler that
// reads through the pool never waits for a connection its own delivery holds.
func (l *leader) lane(ctx context.Context, lane bool) error {
	conn, err := pgx.ConnectConfig(ctx, l.feed.pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("relay %s: connect: %w", l.c.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	limit := l.feed.opts.BatchSize
	if lane == bulk {
		limit = l.feed.opts.BulkBatchSize
	}
	for {
		select {
		case <-l.wake[boolIndex(lane)]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if lane == fast && time.Since(l.lastCheck) >= l.c.Poll {
			l.lastCheck = time.Now()
			if err := l.resync(ctx); err != nil {
				return err
			}
		}
		for {
			n, err := l.deliver(ctx, conn, lane, limit)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
	}
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (l *leader) resync(ctx context.Context) error {
	l.paused.Lock()
	defer l.paused.Unlock()
	return l.feed.resync(ctx, l.c)
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

// laneSQL picks the oldest events of a lane (%s: the lane's condition) with the older
// events of the same entities from either lane, so that no entity's event is handled before
// an older one of it. Both lanes' deliveries lock their rows in outbox order, so that one
// waits for the other where they meet (and then skips what it delivered), and never
// deadlocks. Every step goes through an index, by arrays and a lateral lookup per entity:
// the statement runs as a generic plan, and a join the planner may turn into a scan of the
// whole outbox would cost a batch time in proportion to the backlog.
const laneSQL = `
WITH lane AS (
    SELECT outbox_id FROM outbox_pending
    WHERE consumer = $1 AND %s
    ORDER BY outbox_id LIMIT $2
), entities AS (
    SELECT DISTINCT o.aggregate, o.aggregate_id FROM outbox o
    WHERE o.id = ANY(ARRAY(SELECT outbox_id FROM lane))
), older AS (
    SELECT p.outbox_id FROM entities e
    CROSS JOIN LATERAL (
        SELECT o.id FROM outbox o
        WHERE o.aggregate = e.aggregate AND o.aggregate_id = e.aggregate_id
          AND o.id < (SELECT max(outbox_id) FROM lane)
    ) o
    JOIN outbox_pending p ON p.consumer = $1 AND p.outbox_id = o.id
)
SELECT o.id, o.aggregate, o.aggregate_id, o.kind, o.version, o.payload, o.created_at
FROM outbox_pending p JOIN outbox o ON o.id = p.outbox_id
WHERE p.consumer = $1
  AND p.outbox_id = ANY(ARRAY(SELECT outbox_id FROM lane UNION SELECT outbox_id FROM older))
ORDER BY p.outbox_id
FOR UPDATE OF p`

// The statements of the two lanes: the fast lane's condition matches the partial index of
// its rows.
var laneStatements = [2]string{fmt.Sprintf(laneSQL, "NOT bulk"), fmt.Sprintf(laneSQL, "bulk")}

// deliver reads a batch of lane, hands it to the consumer and deletes it from the queue in
// one transaction, so that a leader killed mid-batch leaves the whole batch to its
// successor. It returns how many events it delivered.
func (l *leader) deliver(ctx context.Context, conn *pgx.Conn, lane bool, limit int) (int, error) {
	l.paused.RLock()
	defer l.paused.RUnlock()
	f, c := l.feed, l.c
	var n int
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, laneStatements[boolIndex(lane)], c.Name, limit)
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
