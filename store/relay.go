package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

// Handler processes a batch of outbox events in order. An error makes the relay retry the
// same batch: handlers must be idempotent.
type Handler func(ctx context.Context, events []model.OutboxEvent) error

// RelayOptions tune a relay; zero values take the defaults.
type RelayOptions struct {
	BatchSize int           // events per handler call (default 500)
	Poll      time.Duration // backstop when no NOTIFY arrives (default 1s)
	Retry     time.Duration // pause after a failed batch or a lost connection (default 1s)
}

// Relay drains one consumer's outbox queue in order and hands the events to its handler.
// Instances of the server all run it; one of them, the holder of the consumer's advisory
// lock, is the leader and does the work, the others stand by and take over when it dies.
type Relay struct {
	store    *Store
	consumer string
	handle   Handler
	opts     RelayOptions
	log      *slog.Logger
}

// NewRelay returns the relay of consumer.
func (s *Store) NewRelay(consumer string, handle Handler, opts RelayOptions, log *slog.Logger) *Relay {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Second
	}
	return &Relay{store: s, consumer: consumer, handle: handle, opts: opts, log: log.With("relay", consumer)}
}

// Run relays until ctx ends: it registers the consumer, then alternates between standing
// by and leading.
func (r *Relay) Run(ctx context.Context) error {
	if _, err := r.store.pool.Exec(ctx, `INSERT INTO outbox_consumers (name) VALUES ($1) ON CONFLICT DO NOTHING`, r.consumer); err != nil {
		return fmt.Errorf("register outbox consumer %s: %w", r.consumer, err)
	}
	r.store.lead(ctx, "outbox-relay:"+r.consumer, r.opts.Poll, r.opts.Retry, r.log, r.relay)
	return nil
}

// ConsumerRegistered reports whether consumer receives outbox events yet.
func (s *Store) ConsumerRegistered(ctx context.Context, consumer string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox_consumers WHERE name = $1)`, consumer).Scan(&ok)
	return ok, err
}

// lead runs work whenever this instance holds the session advisory lock called name, until
// ctx ends: work runs on the connection that holds the lock, so that closing it, by return
// or by death, frees the lock for a standby, which polls for it every poll. After work
// fails or leadership is lost, lead waits retry before standing by again.
func (s *Store) lead(ctx context.Context, name string, poll, retry time.Duration, log *slog.Logger, work func(context.Context, *pgx.Conn) error) {
	for ctx.Err() == nil {
		if err := s.leadOnce(ctx, name, poll, log, work); err != nil && ctx.Err() == nil {
			log.Warn("leadership interrupted", "err", err)
		}
		sleep(ctx, retry)
	}
}

func (s *Store) leadOnce(ctx context.Context, name string, poll time.Duration, log *slog.Logger, work func(context.Context, *pgx.Conn) error) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var leader bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey(name)).Scan(&leader); err != nil {
			return err
		}
		if leader {
			break
		}
		if !sleep(ctx, poll) {
			return ctx.Err()
		}
	}
	log.Info("leading")
	return work(ctx, conn)
}

// relay is the leader's work: drain the queue whenever the outbox is notified.
func (r *Relay) relay(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `LISTEN outbox`); err != nil {
		return err
	}
	for {
		if err := r.drain(ctx); err != nil {
			return err
		}
		if err := wait(ctx, conn, r.opts.Poll); err != nil {
			return err
		}
	}
}

// drain hands every pending event to the handler, a batch at a time.
func (r *Relay) drain(ctx context.Context) error {
	for {
		n, err := r.relayBatch(ctx)
		if err != nil {
			return err
		}
		if n < r.opts.BatchSize {
			return nil
		}
	}
}

const pendingSQL = `
SELECT o.id, o.aggregate, o.aggregate_id, o.kind, o.version, o.payload, o.created_at
FROM outbox_pending p JOIN outbox o ON o.id = p.outbox_id
WHERE p.consumer = $1
ORDER BY p.outbox_id
LIMIT $2
FOR UPDATE OF p`

// relayBatch reads a batch, handles it and deletes it from the queue in one transaction, so
// that a relay killed mid-batch leaves the whole batch for its successor.
func (r *Relay) relayBatch(ctx context.Context) (int, error) {
	var n int
	err := r.store.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, pendingSQL, r.consumer, r.opts.BatchSize)
		if err != nil {
			return err
		}
		events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[model.OutboxEvent])
		if err != nil || len(events) == 0 {
			return err
		}
		if err := r.handle(ctx, events); err != nil {
			return fmt.Errorf("handle %d events: %w", len(events), err)
		}
		ids := make([]int64, len(events))
		for i, e := range events {
			ids[i] = e.ID
		}
		n = len(events)
		_, err = tx.Exec(ctx, `DELETE FROM outbox_pending WHERE consumer = $1 AND outbox_id = ANY($2)`, r.consumer, ids)
		return err
	})
	return n, err
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

// sleep waits d unless ctx ends first; it reports whether ctx is still alive.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// lockKey derives an advisory lock key from its name.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}
