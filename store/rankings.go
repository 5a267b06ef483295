package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

// rankingHistorySQL sums the units of every order as the rankings' consumer ($1) has been
// fed it: +1 for an order placed, unless its "order.placed" event is still queued for the
// consumer (the relay will add it); -1 for an order cancelled, unless its "order.cancelled"
// event is still queued (the relay will take it back). Orders seeded as history have no
// events and count as delivered. Recent decays each order by the half-life ($3 seconds)
// from when it was placed to $2, floored so that PostgreSQL does not underflow (such sales
// are far below the rankings' floor anyway).
const rankingHistorySQL = `
WITH queued AS (
    SELECT x.aggregate_id::uuid AS order_id, x.kind
    FROM outbox_pending p JOIN outbox x ON x.id = p.outbox_id
    WHERE p.consumer = $1 AND x.aggregate = 'order'
), counted AS (
    SELECT o.id, o.created_at,
           (NOT EXISTS (SELECT 1 FROM queued q WHERE q.order_id = o.id AND q.kind = 'order.placed'))::int
         - (o.status = 'CANCELLED'
            AND NOT EXISTS (SELECT 1 FROM queued q WHERE q.order_id = o.id AND q.kind = 'order.cancelled'))::int AS factor
    FROM orders o
)
SELECT l.product_id::text, c.path::text[], sum(l.quantity * o.factor)::int,
       sum(l.quantity * o.factor * power(2, greatest(extract(epoch FROM o.created_at - $2) / $3, -1000)))::float8
FROM counted o
JOIN order_lines l ON l.order_id = o.id
JOIN categories c ON c.id = l.category_id
WHERE o.factor <> 0
GROUP BY l.product_id, c.path`

// RankingHistory returns what the rankings are rebuilt from (see rankingHistorySQL), with
// every category, read from one snapshot.
func (s *Store) RankingHistory(ctx context.Context, consumer string, halfLife time.Duration, now time.Time) (model.RankingHistory, error) {
	var h model.RankingHistory
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, rankingHistorySQL, consumer, now, halfLife.Seconds())
		if err != nil {
			return err
		}
		if h.Totals, err = pgx.CollectRows(rows, pgx.RowToStructByPos[model.SalesTotal]); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id::text FROM categories`)
		if err != nil {
			return err
		}
		h.Categories, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return h, fmt.Errorf("ranking history: %w", err)
	}
	return h, nil
}
