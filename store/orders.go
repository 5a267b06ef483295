package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
)

const orderColumns = `o.id::text, o.number, coalesce(o.customer_id, ''), o.email, o.status, o.currency,
    o.total_cents, o.shipping_address, coalesce(o.idempotency_key, ''), o.created_at, o.updated_at, o.expires_at`

func scanOrder(row pgx.CollectableRow) (*model.Order, error) {
	var o model.Order
	err := row.Scan(&o.ID, &o.Number, &o.CustomerID, &o.Email, &o.Status, &o.Currency, &o.Total,
		&o.ShippingAddress, &o.IdempotencyKey, &o.CreatedAt, &o.UpdatedAt, &o.ExpiresAt)
	return &o, err
}

// orderLinesSQL reads the lines of orders, a row per allocation, lines in the order they
// were placed and each line's allocations by warehouse priority.
const orderLinesSQL = `
SELECT l.order_id::text, l.product_id::text, l.sku, l.name, l.quantity, l.unit_price_cents,
       a.warehouse_id::text, a.quantity
FROM order_lines l
JOIN order_allocations a ON a.order_line_id = l.id
JOIN warehouses w ON w.id = a.warehouse_id
WHERE l.order_id = ANY($1::uuid[])
ORDER BY l.id, w.priority, w.id`

// allocatedLine is a row of orderLinesSQL.
type allocatedLine struct {
	orderID string
	line    *model.OrderLine
	alloc   *model.Allocation
}

func scanAllocatedLine(row pgx.CollectableRow) (allocatedLine, error) {
	r := allocatedLine{line: &model.OrderLine{}, alloc: &model.Allocation{}}
	l := r.line
	err := row.Scan(&r.orderID, &l.ProductID, &l.SKU, &l.Name, &l.Quantity, &l.UnitPrice, &r.alloc.WarehouseID, &r.alloc.Quantity)
	return r, err
}

// queryOrders runs a query of orderColumns and reads the orders' lines with it.
func queryOrders(ctx context.Context, q querier, sql string, args ...any) ([]*model.Order, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	orders, err := pgx.CollectRows(rows, scanOrder)
	if err != nil || len(orders) == 0 {
		return orders, err
	}
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	rows, err = q.Query(ctx, orderLinesSQL, uuidArray(ids))
	if err != nil {
		return nil, err
	}
	lines, err := pgx.CollectRows(rows, scanAllocatedLine)
	addLines(orders, lines)
	return orders, err
}

// addLines gives orders their lines, rows of orderLinesSQL.
func addLines(orders []*model.Order, lines []allocatedLine) {
	byID := make(map[string]*model.Order, len(orders))
	for _, o := range orders {
		byID[o.ID] = o
	}
	for _, r := range lines {
		o := byID[r.orderID]
		if n := len(o.Lines); n > 0 && o.Lines[n-1].ProductID == r.line.ProductID {
			o.Lines[n-1].Allocations = append(o.Lines[n-1].Allocations, r.alloc)
			continue
		}
		r.line.Allocations = []*model.Allocation{r.alloc}
		o.Lines = append(o.Lines, r.line)
	}
}

const ordersByIDsSQL = `SELECT ` + orderColumns + ` FROM orders o WHERE o.id = ANY($1::uuid[])`

// OrdersByIDs returns the orders with these ids, with their lines and allocations, in no
// particular order; unknown ids are left out.
func (s *Store) OrdersByIDs(ctx context.Context, ids []string) ([]*model.Order, error) {
	orders, err := queryOrders(ctx, s.pool, ordersByIDsSQL, uuidArray(ids))
	if err != nil {
		return nil, fmt.Errorf("orders by ids: %w", err)
	}
	return orders, nil
}

// Order returns the order with id, or NOT_FOUND.
func (s *Store) Order(ctx context.Context, id string) (*model.Order, error) {
	orders, err := s.OrdersByIDs(ctx, []string{id})
	if err != nil {
		return nil, err
	}
	if len(orders) == 0 {
		return nil, model.NotFound("order")
	}
	return orders[0], nil
}

// ListOrders returns one keyset page of the orders that match f, newest first.
func (s *Store) ListOrders(ctx context.Context, f model.OrderFilter, page model.Page) (*model.OrderConnection, error) {
	var a args
	conds := orderConditions(&a, f)
	// Newest first: walking forward goes down (created_at, id), backward goes up.
	op, dir := "<", "DESC"
	if page.Backward {
		op, dir = ">", "ASC"
	}
	if page.Cursor != "" {
		c, err := decodeOrderCursor(page.Cursor)
		if err != nil {
			return nil, err.withArgument(page)
		}
		conds = append(conds, `(o.created_at, o.id) `+op+` (`+a.add(c.CreatedAt)+`, `+a.add(c.ID)+`::uuid)`)
	}
	sql := `SELECT ` + orderColumns + ` FROM orders o` + and(conds) +
		` ORDER BY o.created_at ` + dir + `, o.id ` + dir + ` LIMIT ` + a.add(page.Limit+1)
	orders, err := queryOrders(ctx, s.pool, sql, a...)
	if err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	orders, info := trimPage(orders, page)
	conn := &model.OrderConnection{Edges: make([]*model.OrderEdge, len(orders)), PageInfo: info}
	for i, o := range orders {
		conn.Edges[i] = &model.OrderEdge{Cursor: encodeOrderCursor(o), Node: o}
	}
	if len(orders) > 0 {
		info.StartCursor, info.EndCursor = &conn.Edges[0].Cursor, &conn.Edges[len(orders)-1].Cursor
	}
	return conn, nil
}

// trimPage drops the one extra row fetched to learn whether another page follows, and puts
// the rows of a backward walk back in forward order.
func trimPage[T any](rows []T, page model.Page) ([]T, *model.PageInfo) {
	more := len(rows) > page.Limit
	if more {
		rows = rows[:page.Limit]
	}
	if page.Backward {
		slices.Reverse(rows)
	}
	// A cursor means a row stood on its other side when it was made.
	return rows, &model.PageInfo{
		HasNextPage:     more && !page.Backward || page.Backward && page.Cursor != "",
		HasPreviousPage: more && page.Backward || !page.Backward && page.Cursor != "",
	}
}

func orderConditions(a *args, f model.OrderFilter) []string {
	var conds []string
	if f.CustomerID != nil {
		conds = append(conds, `o.customer_id = `+a.add(*f.CustomerID))
	}
	if len(f.Status) > 0 {
		statuses := make([]string, len(f.Status))
		for i, st := range f.Status {
			statuses[i] = string(st)
		}
		conds = append(conds, `o.status = ANY(`+a.add(statuses)+`::text[]::order_status[])`)
	}
	if f.From != nil {
		conds = append(conds, `o.created_at >= `+a.add(*f.From))
	}
	if f.To != nil {
		conds = append(conds, `o.created_at < `+a.add(*f.To))
	}
	return conds
}

// orderCursor is the opaque position of an order in a listing.
type orderCursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"id"`
}

func encodeOrderCursor(o *model.Order) string {
	b, _ := json.Marshal(orderCursor{CreatedAt: o.CreatedAt, ID: o.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeOrderCursor(s string) (orderCursor, *cursorError) {
	var c orderCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.CreatedAt.IsZero() || !model.IsUUID(c.ID) {
		return c, &cursorError{"malformed cursor"}
	}
	return c, nil
}

// transition is a legal change of an order's status and its effect on the reserved stock.
type transition struct {
	to     model.OrderStatus
	from   []model.OrderStatus
	stamp  string // the column that records when
	kind   string // of the outbox event
	verb   string // what a refusal says cannot be done
	reason string // of the stock changes and, for a cancellation, of the order's end
	// releases gives the order's reservations back (reserved_quantity -= n); consumes also
	// takes the units out of stock (quantity -= n), as they leave the warehouse.
	releases, consumes bool
}

var (
	payOrder = transition{to: model.OrderPaid, from: []model.OrderStatus{model.OrderPendingPayment},
		stamp: "paid_at", kind: "order.paid", verb: "marked paid"}
	fulfilOrder = transition{to: model.OrderFulfilled, from: []model.OrderStatus{model.OrderPaid},
		stamp: "fulfilled_at", kind: "order.fulfilled", verb: "fulfilled", reason: "fulfillment", releases: true, consumes: true}
	cancelOrder = transition{to: model.OrderCancelled, from: []model.OrderStatus{model.OrderPendingPayment, model.OrderPaid},
		stamp: "cancelled_at", kind: "order.cancelled", verb: "cancelled", reason: "cancellation", releases: true}
)

// MarkOrderPaid records the payment of a PENDING_PAYMENT order; its stock stays reserved
// until fulfilment. An order past its expiry is refused (CONFLICT) whether or not
// ExpireOrders has cancelled it yet: its stock is no longer promised to it.
func (s *Store) MarkOrderPaid(ctx context.Context, id string) (*model.Order, error) {
	return s.transition(ctx, id, payOrder)
}

// FulfillOrder ships a PAID order: each allocation's units leave their warehouse
// (quantity and reserved_quantity both go down), as stock movements.
func (s *Store) FulfillOrder(ctx context.Context, id string) (*model.Order, error) {
	return s.transition(ctx, id, fulfilOrder)
}

// CancelOrder cancels a PENDING_PAYMENT or PAID order and releases its reserved stock.
func (s *Store) CancelOrder(ctx context.Context, id string) (*model.Order, error) {
	return s.transition(ctx, id, cancelOrder)
}

// transition locks the order, refuses an illegal change with CONFLICT naming the current
// status, and applies t.
func (s *Store) transition(ctx context.Context, id string, t transition) (*model.Order, error) {
	if !model.IsUUID(id) {
		return nil, model.NotFound("order")
	}
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		var status model.OrderStatus
		var expired bool
		err := tx.QueryRow(ctx, `SELECT status, expires_at <= now() FROM orders WHERE id = $1 FOR UPDATE`, id).Scan(&status, &expired)
		if errors.Is(err, pgx.ErrNoRows) {
			return model.NotFound("order")
		}
		if err != nil {
			return err
		}
		if !slices.Contains(t.from, status) {
			return model.Errorf(model.CodeConflict, "the order is %s: it cannot be %s", status, t.verb)
		}
		if t.to == model.OrderPaid && expired {
			return model.Errorf(model.CodeConflict, "the order's hold has expired: it cannot be %s; place the order again", t.verb)
		}
		return applyTransition(ctx, tx, []string{id}, t, t.reason)
	})
	if err != nil {
		return nil, translate(err, t.kind)
	}
	return s.Order(ctx, id)
}

const orderStockSQL = `
SELECT l.product_id::text, a.warehouse_id::text, sum(a.quantity)::int
FROM order_allocations a JOIN order_lines l ON l.id = a.order_line_id
WHERE l.order_id = ANY($1::uuid[])
GROUP BY 1, 2`

// applyTransition moves orders the transaction has locked along t, with its stock effect
// and outbox rows.
func applyTransition(ctx context.Context, tx pgx.Tx, ids []string, t transition, reason string) error {
	sql := fmt.Sprintf(`UPDATE orders SET status = $2::text::order_status, %s = now(),
        cancellation_reason = CASE WHEN $2 = 'CANCELLED' THEN $3 END,
        version = version + 1, updated_at = now()
    WHERE id = ANY($1::uuid[])`, t.stamp)
	if _, err := tx.Exec(ctx, sql, uuidArray(ids), string(t.to), reason); err != nil {
		return err
	}
	if t.releases {
		if err := releaseStock(ctx, tx, ids, t, reason); err != nil {
			return err
		}
	}
	if t.to == model.OrderCancelled {
		if err := recordCancellations(ctx, tx, ids); err != nil {
			return err
		}
	}
	return logOrderEvents(ctx, tx, ids, t.kind, reason)
}

// recordCancellations takes back the sales of cancelled orders: the negated facts of their
// lines, at the time of the cancellation (see orderFactsSQL). History is never rewritten.
func recordCancellations(ctx context.Context, tx pgx.Tx, ids []string) error {
	_, err := tx.Exec(ctx, orderFactsSQL, uuidArray(ids), true)
	return err
}

// releaseStock gives back the reservations of orders, and with t.consumes takes their units
// out of stock.
func releaseStock(ctx context.Context, tx pgx.Tx, ids []string, t transition, reason string) error {
	rows, err := tx.Query(ctx, orderStockSQL, uuidArray(ids))
	if err != nil {
		return err
	}
	allocs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[allocation])
	if err != nil {
		return err
	}
	products := make([]string, len(allocs))
	changes := make([]stockChange, len(allocs))
	for i, a := range allocs {
		products[i] = a.ProductID
		changes[i] = stockChange{ProductID: a.ProductID, WarehouseID: a.WarehouseID, Reserved: -a.Quantity}
		if t.consumes {
			changes[i].Quantity = -a.Quantity
		}
	}
	if _, err := lockStock(ctx, tx, products, nil); err != nil {
		return err
	}
	m := movement{reason: reason, actor: "system"}
	if len(ids) == 1 {
		m.orderID = &ids[0] // batches (expiry) only release reservations, which are not movements
	}
	_, err = changeStock(ctx, tx, changes, m)
	return err
}

// logOrderEventsSQL writes an outbox row per order with what its consumers need: analytics
// and rankings read the lines (a cancellation's lines are the facts to take back).
const logOrderEventsSQL = `
INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload)
SELECT 'order', o.id::text, $2, o.version, jsonb_build_object(
    'order_id', o.id, 'number', o.number, 'customer_id', o.customer_id, 'status', o.status,
    'currency', o.currency, 'total_cents', o.total_cents, 'placed_at', o.created_at,
    'reason', nullif($3, ''),
    'lines', (SELECT jsonb_agg(jsonb_build_object('product_id', l.product_id, 'category_id', l.category_id,
                  'quantity', l.quantity, 'unit_price_cents', l.unit_price_cents) ORDER BY l.id)
              FROM order_lines l WHERE l.order_id = o.id))
FROM orders o WHERE o.id = ANY($1::uuid[])`

func logOrderEvents(ctx context.Context, tx pgx.Tx, ids []string, kind, reason string) error {
	_, err := tx.Exec(ctx, logOrderEventsSQL, uuidArray(ids), kind, reason)
	return err
}

// expirableSQL picks unpaid orders past their expiry, skipping those another transaction
// holds (a payment, a cancellation, another expirer): they are its business.
const expirableSQL = `
SELECT id::text FROM orders
WHERE status = 'PENDING_PAYMENT' AND expires_at <= $1
ORDER BY expires_at LIMIT $2
FOR UPDATE SKIP LOCKED`

// ExpireOrders cancels the unpaid orders whose expiry has passed by now, releasing their
// stock, with the reason "expired"; limit orders per transaction. It returns how many it
// cancelled. Concurrent calls never cancel an order twice.
func (s *Store) ExpireOrders(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, model.InvalidArgument("limit", "limit must be positive")
	}
	total := 0
	for {
		n, err := s.expireBatch(ctx, now, limit)
		total += n
		if err != nil || n < limit {
			return total, err
		}
	}
}

func (s *Store) expireBatch(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, expirableSQL, now, limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		n = len(ids)
		if err != nil || n == 0 {
			return err
		}
		return applyTransition(ctx, tx, ids, cancelOrder, "expired")
	})
	if err != nil {
		return 0, fmt.Errorf("expire orders: %w", err)
	}
	return n, nil
}

// expiryBatch is how many orders RunOrderExpiry cancels per transaction.
const expiryBatch = 200

// RunOrderExpiry runs ExpireOrders every interval until ctx ends, on one instance at a time:
// every instance runs it under the supervisor, the holder of db.LockOrderExpiry leads and
// the others stand by.
func (s *Store) RunOrderExpiry(ctx context.Context, every time.Duration, log *slog.Logger) error {
	log = log.With("job", "order-expiry")
	return db.LeadEvery(ctx, s.pool, db.LockOrderExpiry, every, log, func(ctx context.Context) error {
		n, err := s.ExpireOrders(ctx, time.Now(), expiryBatch)
		if n > 0 {
			log.Info("expired unpaid orders", "orders", n)
		}
		return err
	})
}
