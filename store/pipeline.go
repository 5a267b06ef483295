package store

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Carts and checkout are on the hot path of shopping, and most of their time went to round
// trips: a pgx.Tx spends one on BEGIN, one per statement and one on COMMIT. Their statements
// travel in batches instead (pgx pipelines a batch: one round trip), and each statement reads
// what the statements before it in the batch committed or locked, since under READ COMMITTED
// every statement takes a fresh snapshot. A batch's callbacks run as its results arrive; a
// statement whose effect depends on a check that Go makes must therefore make the same
// check itself, in SQL, and change nothing when it fails: the Go check only words the error.

// pipeline is a transaction sent in batches of statements, one round trip each: BEGIN travels
// with the first batch and COMMIT with the last.
type pipeline struct {
	conn  *pgxpool.Conn
	begun bool
}

// send sends b in one round trip and runs its callbacks; commit ends the transaction with
// it. It returns the first error, of a statement or a callback.
func (p *pipeline) send(ctx context.Context, b *pgx.Batch, commit bool) error {
	if !p.begun {
		b.QueuedQueries = slices.Insert(b.QueuedQueries, 0, &pgx.QueuedQuery{SQL: "BEGIN"})
		p.begun = true
	}
	if commit {
		b.Queue("COMMIT")
	}
	return p.conn.SendBatch(ctx, b).Close()
}

// pipelined runs fn in a pipeline on a connection of its own, retried like retryTx. What fn
// leaves uncommitted, by an error or a refusal, is rolled back.
func (s *Store) pipelined(ctx context.Context, fn func(*pipeline) error) error {
	return s.retry(ctx, func() error {
		release, err := s.writeSlot(ctx)
		if err != nil {
			return err
		}
		defer release()
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release() // the pool discards a connection left inside a transaction
		err = fn(&pipeline{conn: conn})
		if conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		return err
	})
}

// batched sends the batch that build returns as one implicit transaction (one round trip:
// all of it commits, or none of it when a statement fails), retried like retryTx; build runs
// again for every attempt.
func (s *Store) batched(ctx context.Context, build func() *pgx.Batch) error {
	return s.retry(ctx, func() error {
		release, err := s.writeSlot(ctx)
		if err != nil {
			return err
		}
		defer release()
		return s.pool.SendBatch(ctx, build()).Close()
	})
}
