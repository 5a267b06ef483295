package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

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
func (s *Store) Checkout(ctx context.Context, customerID string, in model.CheckoutInput) (*model.Order, error) {
	if in.IdempotencyKey == "" {
		return nil, model.InvalidArgument("idempotencyKey", "an idempotency key is required")
	}
	if !model.IsUUID(in.CartID) {
		return nil, model.NotFound("cart")
	}
	var id string
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		var err error
		id, err = s.checkout(ctx, tx, customerID, in)
		return err
	})
	if isUniqueViolation(err, "orders_idempotency_key") {
		// A twin request with the same key committed its order first: that order is the
		// answer, read in a fresh transaction that can see it.
		id, err = orderIDByKey(ctx, s.pool, customerID, in)
	}
	if err != nil {
		return nil, translate(err, "checkout")
	}
	return s.Order(ctx, id)
}

// checkout places the order and returns its id. The stock is locked last, so that the rows
// every checkout of a product queues for are held for as short a time as possible.
func (s *Store) checkout(ctx context.Context, tx pgx.Tx, customerID string, in model.CheckoutInput) (string, error) {
	cart, err := lockCart(ctx, tx, in.CartID)
	if err != nil {
		return "", err
	}
	// Looked up after the cart lock: a twin request that waited for the lock now sees the
	// order its twin committed.
	if id, err := orderIDByKey(ctx, tx, customerID, in); id != "" || err != nil {
		return id, err
	}
	if err := checkoutable(cart, customerID); err != nil {
		return "", err
	}
	items, err := cartItems(ctx, tx, in.CartID)
	if err != nil {
		return "", err
	}
	if err := s.limits.checkUnits(items); err != nil {
		return "", err
	}
	if customerID == "" && s.limits.GuestOpenOrders > 0 {
		if err := s.limits.checkGuest(ctx, tx, in); err != nil {
			return "", err
		}
	}
	total, err := reprice(items, in.ExpectedTotal)
	if err != nil {
		return "", err
	}
	id, err := s.insertOrder(ctx, tx, customerID, cart.Currency, total, items, in)
	if err != nil {
		return "", err
	}
	if err := reserve(ctx, tx, id, items); err != nil {
		return "", err
	}
	return id, recordSales(ctx, tx, id)
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

// recordSales writes the sales facts of a placed order whose stock is allocated.
func recordSales(ctx context.Context, tx pgx.Tx, orderID string) error {
	_, err := tx.Exec(ctx, orderFactsSQL, uuidArray([]string{orderID}), false)
	return err
}

func checkoutable(cart *model.Cart, customerID string) error {
	if cart.CustomerID != "" && cart.CustomerID != customerID {
		return model.Errorf(model.CodeForbidden, "the cart belongs to another customer")
	}
	if cart.Status != model.CartOpen {
		return model.Errorf(model.CodeConflict, "the cart is %s: it cannot be checked out", cart.Status)
	}
	return nil
}

// orderIDByKeySQL finds an order by its idempotency key, which is unique per customer, or
// per cart for a guest (the index orders_idempotency_key).
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

// guestSQL names the guest of a checkout by email and by address (see guest_address_key).
const guestSQL = `SELECT lower($1), guest_address_key($2::jsonb)`

// openGuestOrdersSQL counts a guest's unpaid orders still holding stock, and says when the
// first of them lets go.
const openGuestOrdersSQL = `
SELECT count(*)::int, coalesce(min(expires_at) - now(), '0') FROM orders
WHERE status = 'PENDING_PAYMENT' AND customer_id IS NULL AND expires_at > now()
  AND (lower(email) = $1 OR guest_address_key(shipping_address) = $2)`

// checkGuest refuses a guest's checkout, RATE_LIMITED until the first one expires, when the
// guest already has as many unpaid orders as allowed. The guest's locks make concurrent
// checkouts of one guest count one after the other.
func (l CheckoutLimits) checkGuest(ctx context.Context, tx pgx.Tx, in model.CheckoutInput) error {
	var email, address string
	if err := tx.QueryRow(ctx, guestSQL, in.Email, string(in.ShippingAddress)).Scan(&email, &address); err != nil {
		return err
	}
	keys := []int64{db.GuestLock("email:" + email).Key(), db.GuestLock("address:" + address).Key()}
	slices.Sort(keys) // one order for every taker: no deadlock
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, keys); err != nil {
		return err
	}
	var open int
	var wait time.Duration
	if err := tx.QueryRow(ctx, openGuestOrdersSQL, email, address).Scan(&open, &wait); err != nil {
		return err
	}
	if open >= l.GuestOpenOrders {
		return &model.Error{Code: model.CodeRateLimited, RetryAfter: wait,
			Message: fmt.Sprintf("%d orders with this email or address are waiting for payment: pay or cancel one, or sign in", open)}
	}
	return nil
}

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
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ ID, CartID string }])
	if err != nil || len(found) == 0 {
		return "", err
	}
	if found[0].CartID != in.CartID {
		return "", &model.Error{Code: model.CodeConflict, Argument: "idempotencyKey",
			Message: "this idempotency key was used for another cart's checkout"}
	}
	return found[0].ID, nil
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

func cartItems(ctx context.Context, tx pgx.Tx, cartID string) ([]cartItem, error) {
	rows, err := tx.Query(ctx, cartItemsSQL, cartID)
	if err != nil {
		return nil, err
	}
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[cartItem])
	if err == nil && len(items) == 0 {
		return nil, model.InvalidArgument("cartId", "the cart is empty")
	}
	return items, err
}

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

// insertOrderSQL creates the order and its lines and closes the cart.
const insertOrderSQL = `
WITH o AS (
    INSERT INTO orders (customer_id, email, currency, total_cents, shipping_address, idempotency_key, cart_id, expires_at)
    VALUES (nullif($1, ''), $2, $3, $4, coalesce($5::jsonb, '{}'), $6, $7, now() + make_interval(secs => $8))
    RETURNING id
), lines AS (
    INSERT INTO order_lines (order_id, product_id, category_id, sku, name, quantity, unit_price_cents)
    SELECT o.id, x.product_id, x.category_id, x.sku, x.name, x.quantity, x.unit_price_cents
    FROM o, ROWS FROM (jsonb_to_recordset($9::jsonb)
        AS (product_id uuid, category_id uuid, sku text, name text, quantity int, unit_price_cents bigint))
        WITH ORDINALITY AS x(product_id, category_id, sku, name, quantity, unit_price_cents, n)
    ORDER BY x.n
), closed AS (
    UPDATE carts SET status = 'CHECKED_OUT', updated_at = now() WHERE id = $7
)
SELECT id::text FROM o`

func (s *Store) insertOrder(ctx context.Context, tx pgx.Tx, customerID, currency string, total model.Cents, items []cartItem, in model.CheckoutInput) (string, error) {
	var address any // NULL, not JSON null, when there is none
	if len(in.ShippingAddress) > 0 {
		address = string(in.ShippingAddress)
	}
	var id string
	err := tx.QueryRow(ctx, insertOrderSQL, customerID, in.Email, currency, int64(total), address,
		in.IdempotencyKey, in.CartID, s.hold(customerID == "").Seconds(), items).Scan(&id)
	if err != nil {
		return "", err
	}
	return id, logOrderEvents(ctx, tx, []string{id}, "order.placed", "")
}

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

// reserve locks the stock of the items, allocates it and reserves it for the order.
func reserve(ctx context.Context, tx pgx.Tx, orderID string, items []cartItem) error {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	stock, err := lockStock(ctx, tx, ids, nil)
	if err != nil {
		return err
	}
	allocs, err := allocate(items, stock)
	if err != nil {
		return err
	}
	changes := make([]stockChange, len(allocs))
	for i, a := range allocs {
		changes[i] = stockChange{ProductID: a.ProductID, WarehouseID: a.WarehouseID, Reserved: a.Quantity}
	}
	if _, err := changeStock(ctx, tx, changes, movement{reason: "checkout", orderID: &orderID}); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, insertAllocationsSQL, orderID, allocs)
	return err
}

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
	for attempt := 1; ; attempt++ {
		err := s.inTx(ctx, fn)
		if attempt == retryAttempts || !retryable(err) {
			return err
		}
		// Jittered and doubling, so that the transactions that collided do not collide again.
		if !db.Sleep(ctx, time.Duration(rand.Int64N(int64(time.Millisecond)<<attempt))) {
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
