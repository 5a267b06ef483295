package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
)

// DefaultOrderHold is how long an unpaid order keeps its stock reserved unless WithOrderHold
// says otherwise.
const DefaultOrderHold = 30 * time.Minute

// WithOrderHold sets how long an unpaid order keeps its stock reserved before ExpireOrders
// cancels it.
func WithOrderHold(d time.Duration) Option {
	return func(s *Store) { s.orderHold = d }
}

// CheckoutLimits bound how much stock one order, and one guest, can hold: without them one
// guest could reserve a product's whole stock for the length of the hold and never pay. A
// zero field sets no limit.
type CheckoutLimits struct {
	LineUnits  int // units of one product in one order
	OrderUnits int // units in one order
	// GuestOpenOrders is how many unpaid orders a guest may have at once; a guest is known
	// by email and by shipping address, so new carts do not make a new guest.
	GuestOpenOrders int
	// GuestHold is how long a guest's unpaid order keeps its stock (at most the order hold
	// that signed-in customers get).
	GuestHold time.Duration
}

// DefaultCheckoutLimits are the server's limits unless configured otherwise (a Store has
// none unless WithCheckoutLimits sets them).
var DefaultCheckoutLimits = CheckoutLimits{LineUnits: 20, OrderUnits: 50, GuestOpenOrders: 2, GuestHold: 10 * time.Minute}

// WithCheckoutLimits sets the checkout limits.
func WithCheckoutLimits(l CheckoutLimits) Option {
	return func(s *Store) { s.limits = l }
}

// hold is how long an order keeps its stock unpaid.
func (s *Store) hold(guest bool) time.Duration {
	if guest && s.limits.GuestHold > 0 {
		return min(s.limits.GuestHold, s.orderHold)
	}
	return s.orderHold
}

// Checkout turns an OPEN cart into a PENDING_PAYMENT order with its stock reserved, in one
// transaction: it re-validates every price, reserves stock across warehouses (one warehouse
// when one can fill the whole order, else by warehouse priority), copies the lines, closes
// the cart and writes the outbox. A retried checkout with the same idempotency key returns
// the first order; the same key with another cart is CONFLICT. It refuses with CONFLICT
// when prices changed and ExpectedTotal does not name the new total, with OUT_OF_STOCK
// when stock cannot cover a line, and with FORBIDDEN when the cart is another customer's.
// The transaction takes two round trips (see checkout).
func (s *Store) Checkout(ctx context.Context, customerID string, in model.CheckoutInput) (*model.Order, error) {
	if in.IdempotencyKey == "" {
		return nil, model.InvalidArgument("idempotencyKey", "an idempotency key is required")
	}
	if !model.IsUUID(in.CartID) {
		return nil, model.NotFound("cart")
	}
	var order *model.Order
	var placed string // by an earlier request with the same key
	err := s.pipelined(ctx, func(p *pipeline) error {
		var err error
		order, placed, err = s.checkout(ctx, p, customerID, in)
		return err
	})
	if isUniqueViolation(err, "orders_idempotency_key") {
		// A twin request with the same key committed its order first: that order is the
		// answer, read in a fresh transaction that can see it.
		placed, err = orderIDByKey(ctx, s.pool, customerID, in)
	}
	if err != nil {
		return nil, translate(err, "checkout")
	}
	if order != nil {
		return order, nil
	}
	return s.Order(ctx, placed)
}

// checkoutState is what the first round trip of a checkout reads.
type checkoutState struct {
	cart   *model.Cart
	placed string // the order of an earlier request with the same key
	twin   error  // the same key was used with another cart
	items  []cartItem
	stock  []lockedStock
	// A guest's unpaid orders, and how long until the first lets go.
	guestOrders int
	guestWait   time.Duration
}

// checkout places the order and returns it, or the id of the order placed before with the
// same key. The first round trip locks the cart, looks for that order (after the lock: a
// twin request that waited for it now sees the order its twin committed), reads the lines
// at current prices, counts a guest's unpaid orders under the guest's locks and locks the
// stock of the cart's products, last, so that the rows every checkout of a product queues
// for are held for as short a time as possible. Go then checks and allocates, and the
// second round trip writes the order, its lines, events, reservations, allocations and
// sales, reads the order back and commits.
func (s *Store) checkout(ctx context.Context, p *pipeline, customerID string, in model.CheckoutInput) (*model.Order, string, error) {
	st, err := s.readCheckout(ctx, p, customerID, in)
	switch {
	case err != nil:
		return nil, "", err
	case st.cart == nil:
		return nil, "", model.NotFound("cart")
	case st.placed != "" || st.twin != nil:
		return nil, st.placed, st.twin
	}
	if err := checkoutable(st.cart, customerID); err != nil {
		return nil, "", err
	}
	if len(st.items) == 0 {
		return nil, "", model.InvalidArgument("cartId", "the cart is empty")
	}
	if err := s.limits.checkUnits(st.items); err != nil {
		return nil, "", err
	}
	if s.guestLimited(customerID) && st.guestOrders >= s.limits.GuestOpenOrders {
		return nil, "", &model.Error{Code: model.CodeRateLimited, RetryAfter: st.guestWait,
			Message: fmt.Sprintf("%d orders with this email or address are waiting for payment: pay or cancel one, or sign in", st.guestOrders)}
	}
	total, err := reprice(st.items, in.ExpectedTotal)
	if err != nil {
		return nil, "", err
	}
	allocs, err := allocate(st.items, st.stock)
	if err != nil {
		return nil, "", err
	}
	order, err := s.placeOrder(ctx, p, customerID, st, total, allocs, in)
	return order, "", err
}

// guestLimited says whether a checkout by customerID ("" for a guest) counts the guest's
// unpaid orders.
func (s *Store) guestLimited(customerID string) bool {
	return customerID == "" && s.limits.GuestOpenOrders > 0
}

// readCheckout sends the first round trip of checkout.
func (s *Store) readCheckout(ctx context.Context, p *pipeline, customerID string, in model.CheckoutInput) (*checkoutState, error) {
	st := &checkoutState{}
	b := &pgx.Batch{}
	b.Queue(lockCartSQL, in.CartID).Query(func(rows pgx.Rows) error {
		carts, err := pgx.CollectRows(rows, scanCart)
		if len(carts) > 0 {
			st.cart = carts[0]
		}
		return err
	})
	b.Queue(orderIDByKeySQL, customerID, in.CartID, in.IdempotencyKey).Query(func(rows pgx.Rows) error {
		var err error
		st.placed, st.twin, err = placedOrder(rows, in)
		return err
	})
	b.Queue(cartItemsSQL, in.CartID).Query(func(rows pgx.Rows) error {
		var err error
		st.items, err = pgx.CollectRows(rows, pgx.RowToStructByPos[cartItem])
		return err
	})
	if s.guestLimited(customerID) {
		// The guest's locks make concurrent checkouts of one guest count one after the other.
		b.Queue(guestLocksSQL, in.Email, string(in.ShippingAddress))
		b.Queue(openGuestOrdersSQL, in.Email, string(in.ShippingAddress)).QueryRow(func(row pgx.Row) error {
			return row.Scan(&st.guestOrders, &st.guestWait)
		})
	}
	b.Queue(lockCartStockSQL, in.CartID).Query(func(rows pgx.Rows) error {
		var err error
		st.stock, err = pgx.CollectRows(rows, pgx.RowToStructByPos[lockedStock])
		return err
	})
	return st, p.send(ctx, b, false)
}

// placeOrder sends the second round trip of checkout, which commits.
func (s *Store) placeOrder(ctx context.Context, p *pipeline, customerID string, st *checkoutState, total model.Cents, allocs []allocation, in model.CheckoutInput) (*model.Order, error) {
	var address any // NULL, not JSON null, when there is none
	if len(in.ShippingAddress) > 0 {
		address = string(in.ShippingAddress)
	}
	id := uuid.NewString()
	ids := uuidArray([]string{id})
	changes := make([]stockChange, len(allocs))
	for i, a := range allocs {
		changes[i] = stockChange{ProductID: a.ProductID, WarehouseID: a.WarehouseID, Reserved: a.Quantity}
	}
	b := &pgx.Batch{}
	b.Queue(insertOrderSQL, id, customerID, in.Email, st.cart.Currency, int64(total), address,
		in.IdempotencyKey, in.CartID, s.hold(customerID == "").Seconds(), st.items)
	b.Queue(logOrderEventsSQL, ids, "order.placed", "")
	b.Queue(changeStockSQL, changes, "checkout", "", &id)
	b.Queue(insertAllocationsSQL, id, allocs)
	b.Queue(orderFactsSQL, ids, false)
	var orders []*model.Order
	b.Queue(ordersByIDsSQL, ids).Query(func(rows pgx.Rows) error {
		var err error
		orders, err = pgx.CollectRows(rows, scanOrder)
		return err
	})
	b.Queue(orderLinesSQL, ids).Query(func(rows pgx.Rows) error {
		lines, err := pgx.CollectRows(rows, scanAllocatedLine)
		addLines(orders, lines)
		return err
	})
	if err := p.send(ctx, b, true); err != nil {
		return nil, err
	}
	if len(orders) != 1 {
		return nil, errors.New("the order placed was not read back")
	}
	return orders[0], nil
}

// orderFactsSQL writes sales facts of orders from their lines: one per line and warehouse
// allocation, with the unit price paid and the unit cost and brand the line kept from the
// time of the sale. $2 false: the sales, at each order's time; true: their cancellation,
// the same facts negated at the time of the cancellation. The flags mark one fact of each
// order, (order, category), (order, brand) and (order, product), so that their sums count
// distinct orders (see model.SalesFigures); the same facts get them in both. The orders'
// times find the chunks or partitions of their sales.
const orderFactsSQL = `
INSERT INTO sales_facts (time, order_id, product_id, category_id, brand_id, warehouse_id, units,
                         revenue_cents, cost_cents, order_first, category_first, brand_first, product_first)
SELECT CASE WHEN $2 THEN now() ELSE o.created_at END, o.id, l.product_id, l.category_id, l.brand_id, a.warehouse_id,
       s.sign * a.quantity, s.sign * a.quantity * l.unit_price_cents, s.sign * a.quantity * l.unit_cost_cents,
       s.sign * (row_number() OVER (PARTITION BY o.id ORDER BY l.id, a.warehouse_id) = 1)::int,
       s.sign * (row_number() OVER (PARTITION BY o.id, l.category_id ORDER BY l.id, a.warehouse_id) = 1)::int,
       s.sign * (row_number() OVER (PARTITION BY o.id, l.brand_id ORDER BY l.id, a.warehouse_id) = 1)::int,
       s.sign * (row_number() OVER (PARTITION BY l.id ORDER BY a.warehouse_id) = 1)::int
FROM (SELECT CASE WHEN $2 THEN -1 ELSE 1 END AS sign) s
CROSS JOIN orders o
JOIN order_lines l ON l.order_id = o.id
JOIN order_allocations a ON a.order_line_id = l.id
WHERE o.id = ANY($1::uuid[])`

func checkoutable(cart *model.Cart, customerID string) error {
	if cart.CustomerID != "" && cart.CustomerID != customerID {
		return model.Errorf(model.CodeForbidden, "the cart belongs to another customer")
	}
	if cart.Status != model.CartOpen {
		return model.Errorf(model.CodeConflict, "the cart is %s: it cannot be checked out", cart.Status)
	}
	return nil
}

// checkUnits refuses an order with more units of a product, or more units in all, than
// the limits allow.
func (l CheckoutLimits) checkUnits(items []cartItem) error {
	total := 0
	for _, it := range items {
		if l.LineUnits > 0 && it.Quantity > l.LineUnits {
			return model.InvalidArgument("cartId", "an order holds at most %d of a product: reduce %s (%s) from %d", l.LineUnits, it.Name, it.SKU, it.Quantity)
		}
		total += it.Quantity
	}
	if l.OrderUnits > 0 && total > l.OrderUnits {
		return model.InvalidArgument("cartId", "an order holds at most %d units: the cart has %d", l.OrderUnits, total)
	}
	return nil
}

// guestLocksSQL takes the locks of a guest ($1 the email, $2 the shipping address) for
// the transaction, in the order of their keys so that no two takers deadlock; a guest is
// known by email and by address (see guest_address_key).
const guestLocksSQL = `
SELECT pg_advisory_xact_lock(k) FROM (
    SELECT k FROM unnest(ARRAY[hashtextextended('guest:email:' || lower($1), 0),
                               hashtextextended('guest:address:' || guest_address_key($2::jsonb), 0)]) AS k
    ORDER BY k) AS keys`

// openGuestOrdersSQL counts a guest's unpaid orders still holding stock, and says when the
// first of them lets go.
const openGuestOrdersSQL = `
SELECT count(*)::int, coalesce(min(expires_at) - now(), '0') FROM orders
WHERE status = 'PENDING_PAYMENT' AND customer_id IS NULL AND expires_at > now()
  AND (lower(email) = lower($1) OR guest_address_key(shipping_address) = guest_address_key($2::jsonb))`

// orderIDByKeySQL finds an order by its idempotency key, which is unique per customer, or
// per cart for a guest (the index orders_idempotency_key).
const orderIDByKeySQL = `
SELECT id::text, cart_id::text FROM orders
WHERE coalesce(customer_id, cart_id::text) = coalesce(nullif($1, ''), $2) AND idempotency_key = $3`

// orderIDByKey returns the id of the order placed with in's idempotency key ("" if none),
// and CONFLICT when the customer placed it from another cart.
func orderIDByKey(ctx context.Context, q querier, customerID string, in model.CheckoutInput) (string, error) {
	rows, err := q.Query(ctx, orderIDByKeySQL, customerID, in.CartID, in.IdempotencyKey)
	if err != nil {
		return "", err
	}
	id, twin, err := placedOrder(rows, in)
	if err != nil {
		return "", err
	}
	return id, twin
}

// placedOrder reads the rows of orderIDByKeySQL: the order's id ("" if none), or CONFLICT
// (twin) when the customer placed it from another cart.
func placedOrder(rows pgx.Rows, in model.CheckoutInput) (id string, twin, err error) {
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ ID, CartID string }])
	if err != nil || len(found) == 0 {
		return "", nil, err
	}
	if found[0].CartID != in.CartID {
		return "", &model.Error{Code: model.CodeConflict, Argument: "idempotencyKey",
			Message: "this idempotency key was used for another cart's checkout"}, nil
	}
	return found[0].ID, nil, nil
}

// cartItem is a cart line with its product as the catalog has it now.
type cartItem struct {
	ProductID  string              `json:"product_id"`
	CategoryID string              `json:"category_id"`
	SKU        string              `json:"sku"`
	Name       string              `json:"name"`
	Status     model.ProductStatus `json:"-"`
	Quantity   int                 `json:"quantity"`
	Snapshot   model.Cents         `json:"-"`
	Price      model.Cents         `json:"unit_price_cents"`
}

const cartItemsSQL = `
SELECT l.product_id::text, p.category_id::text, p.sku, p.name, p.status, l.quantity,
       l.price_snapshot_cents, p.price_cents
FROM cart_lines l JOIN products p ON p.id = l.product_id
WHERE l.cart_id = $1
ORDER BY l.added_at, l.id`

// reprice totals the items at current prices. The customer never pays a price they were not
// shown: if a price changed since its line was added, the checkout goes through only when
// expected names the new total.
func reprice(items []cartItem, expected *model.Cents) (model.Cents, error) {
	var total model.Cents
	changed := false
	for _, it := range items {
		if it.Status != model.ProductStatusActive {
			return 0, model.InvalidArgument("cartId", "%s (%s) is no longer sold: remove it from the cart", it.Name, it.SKU)
		}
		total += it.Price * model.Cents(it.Quantity)
		changed = changed || it.Price != it.Snapshot
	}
	switch {
	case changed && (expected == nil || *expected != total):
		return 0, &model.Error{Code: model.CodeConflict, Argument: "expectedTotal",
			Message: fmt.Sprintf("prices changed since the items were added: the new total is %s", total)}
	case expected != nil && *expected != total:
		return 0, &model.Error{Code: model.CodeConflict, Argument: "expectedTotal",
			Message: fmt.Sprintf("the total is %s, not %s", total, *expected)}
	}
	return total, nil
}

// insertOrderSQL creates order $1 and its lines and closes the cart.
const insertOrderSQL = `
WITH o AS (
    INSERT INTO orders (id, customer_id, email, currency, total_cents, shipping_address, idempotency_key, cart_id, expires_at)
    VALUES ($1, nullif($2, ''), $3, $4, $5, coalesce($6::jsonb, '{}'), $7, $8, now() + make_interval(secs => $9))
    RETURNING id
), lines AS (
    INSERT INTO order_lines (order_id, product_id, category_id, sku, name, quantity, unit_price_cents)
    SELECT o.id, x.product_id, x.category_id, x.sku, x.name, x.quantity, x.unit_price_cents
    FROM o, ROWS FROM (jsonb_to_recordset($10::jsonb)
        AS (product_id uuid, category_id uuid, sku text, name text, quantity int, unit_price_cents bigint))
        WITH ORDINALITY AS x(product_id, category_id, sku, name, quantity, unit_price_cents, n)
    ORDER BY x.n
), closed AS (
    UPDATE carts SET status = 'CHECKED_OUT', updated_at = now() WHERE id = $8
)
SELECT id::text FROM o`

// allocation is the part of an order's line taken from one warehouse.
type allocation struct {
	ProductID   string `json:"product_id"`
	WarehouseID string `json:"warehouse_id"`
	Quantity    int    `json:"quantity"`
}

const insertAllocationsSQL = `
INSERT INTO order_allocations (order_line_id, warehouse_id, quantity)
SELECT l.id, a.warehouse_id, a.quantity
FROM jsonb_to_recordset($2::jsonb) AS a(product_id uuid, warehouse_id uuid, quantity int)
JOIN order_lines l ON l.order_id = $1 AND l.product_id = a.product_id`

// allocate takes the items from the warehouses' available stock. An order ships in one
// parcel when it can: from the first warehouse, by priority, that can fill every line.
// Otherwise each line is filled from the warehouses in priority order. A line that all of
// them together cannot fill is OUT_OF_STOCK.
func allocate(items []cartItem, stock []lockedStock) ([]allocation, error) {
	stock = slices.Clone(stock)
	slices.SortFunc(stock, func(a, b lockedStock) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.WarehouseID, b.WarehouseID))
	})
	available := make(map[[2]string]int, len(stock))
	var houses []string
	for _, r := range stock {
		available[[2]string{r.ProductID, r.WarehouseID}] = r.Quantity - r.Reserved
		if !slices.Contains(houses, r.WarehouseID) {
			houses = append(houses, r.WarehouseID)
		}
	}
	for _, w := range houses {
		if allocs, short := fill(items, available, []string{w}); short == nil {
			return allocs, nil
		}
	}
	allocs, short := fill(items, available, houses)
	if short != nil {
		n := 0
		for _, w := range houses {
			n += available[[2]string{short.ProductID, w}]
		}
		return nil, model.Errorf(model.CodeOutOfStock, "only %d of %s (%s) available, %d asked for", n, short.Name, short.SKU, short.Quantity)
	}
	return allocs, nil
}

// fill takes each item from the warehouses in order; it returns the first item they cannot
// fill, if any. Items are distinct products, so no stock is counted twice.
func fill(items []cartItem, available map[[2]string]int, houses []string) ([]allocation, *cartItem) {
	var out []allocation
	for i, it := range items {
		need := it.Quantity
		for _, w := range houses {
			if n := min(need, available[[2]string{it.ProductID, w}]); n > 0 {
				out = append(out, allocation{ProductID: it.ProductID, WarehouseID: w, Quantity: n})
				need -= n
			}
		}
		if need > 0 {
			return nil, &items[i]
		}
	}
	return out, nil
}

// retryAttempts bounds how often retryTx runs a transaction.
const retryAttempts = 5

// retryTx runs fn in a transaction like inTx, and runs it again after a serialization
// failure or a deadlock: those are the database's way to say "try again", and callers never
// see them. fn must start from scratch every time.
func (s *Store) retryTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.retry(ctx, func() error { return s.inTx(ctx, fn) })
}

// retry runs attempt, a whole transaction, again after a serialization failure or a
// deadlock, like retryTx.
func (s *Store) retry(ctx context.Context, attempt func() error) error {
	for n := 1; ; n++ {
		err := attempt()
		if n == retryAttempts || !retryable(err) {
			return err
		}
		// Jittered and doubling, so that the transactions that collided do not collide again.
		if !db.Sleep(ctx, time.Duration(rand.Int64N(int64(time.Millisecond)<<n))) {
			return err
		}
	}
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}
