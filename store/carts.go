package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

// maxLineQuantity is the most of one product a cart holds (the CHECK of cart_lines agrees).
const maxLineQuantity = 999

const cartColumns = `id::text, coalesce(customer_id, ''), status, currency, created_at, updated_at`

func scanCart(row pgx.CollectableRow) (*model.Cart, error) {
	var c model.Cart
	err := row.Scan(&c.ID, &c.CustomerID, &c.Status, &c.Currency, &c.CreatedAt, &c.UpdatedAt)
	return &c, err
}

// cartWithLines is cartColumns followed by the cart's lines as one JSON array, so that a
// cart comes back with its lines in one round trip (cart changes are on the hot path of
// shopping).
const cartWithLines = cartColumns + `, (
    SELECT coalesce(jsonb_agg(jsonb_build_object('ID', l.id::text, 'ProductID', l.product_id::text,
        'Quantity', l.quantity, 'PriceSnapshot', l.price_snapshot_cents, 'AddedAt', l.added_at)
        ORDER BY l.added_at, l.id), '[]')
    FROM cart_lines l WHERE l.cart_id = carts.id)`

// loadCart runs a query of one cart's cartWithLines; no row is NOT_FOUND.
func loadCart(ctx context.Context, q querier, sql string, args ...any) (*model.Cart, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return collectCart(rows)
}

// collectCart reads the cart of a query of cartWithLines; no row is NOT_FOUND.
func collectCart(rows pgx.Rows) (*model.Cart, error) {
	carts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*model.Cart, error) {
		var c model.Cart
		var lines []byte
		if err := row.Scan(&c.ID, &c.CustomerID, &c.Status, &c.Currency, &c.CreatedAt, &c.UpdatedAt, &lines); err != nil {
			return nil, err
		}
		return &c, json.Unmarshal(lines, &c.Lines)
	})
	if err != nil {
		return nil, err
	}
	if len(carts) == 0 {
		return nil, model.NotFound("cart")
	}
	return carts[0], nil
}

const (
	cartByIDSQL       = `SELECT ` + cartWithLines + ` FROM carts WHERE id = $1`
	cartByTokenSQL    = `SELECT ` + cartWithLines + ` FROM carts WHERE token_hash = $1`
	customerCartSQL   = `SELECT ` + cartWithLines + ` FROM carts WHERE customer_id = $1 AND status = 'OPEN'`
	lockCartSQL       = `SELECT ` + cartColumns + ` FROM carts WHERE id = $1 FOR UPDATE`
	createGuestSQL    = `INSERT INTO carts (token_hash) VALUES ($1) RETURNING ` + cartWithLines
	createCustomerSQL = `INSERT INTO carts (customer_id) SELECT $1
    WHERE NOT EXISTS (SELECT 1 FROM carts WHERE customer_id = $1 AND status = 'OPEN')`
)

// CreateCart returns a new guest cart when customerID is "", with its secret Token (the only
// time the token is told: the database keeps its hash); otherwise the customer's OPEN cart,
// created if they have none.
func (s *Store) CreateCart(ctx context.Context, customerID string) (*model.Cart, error) {
	if customerID == "" {
		return s.createGuestCart(ctx)
	}
	var cart *model.Cart
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockCustomerCarts(ctx, tx, customerID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, createCustomerSQL, customerID); err != nil {
			return err
		}
		var err error
		cart, err = loadCart(ctx, tx, customerCartSQL, customerID)
		return err
	})
	if err != nil {
		return nil, translate(err, "create cart")
	}
	return cart, nil
}

func (s *Store) createGuestCart(ctx context.Context) (*model.Cart, error) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails
	token := base64.RawURLEncoding.EncodeToString(secret)
	cart, err := loadCart(ctx, s.pool, createGuestSQL, tokenHash(token))
	if err != nil {
		return nil, fmt.Errorf("create cart: %w", err)
	}
	cart.Token = token
	return cart, nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// lockCustomerCarts serialises the transactions that may open a cart for a customer, so
// that two first visits cannot race to create two.
func lockCustomerCarts(ctx context.Context, tx pgx.Tx, customerID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('carts:' || $1, 0))`, customerID)
	return err
}

// CartByID returns the cart with id, whatever its status, or NOT_FOUND.
func (s *Store) CartByID(ctx context.Context, id string) (*model.Cart, error) {
	if !model.IsUUID(id) {
		return nil, model.NotFound("cart")
	}
	return s.readCart(ctx, cartByIDSQL, id)
}

// CartByToken returns the guest cart whose secret token is token, or NOT_FOUND. A cart
// attached to a customer no longer answers to its token.
func (s *Store) CartByToken(ctx context.Context, token string) (*model.Cart, error) {
	return s.readCart(ctx, cartByTokenSQL, tokenHash(token))
}

// CustomerCart returns the customer's OPEN cart, or NOT_FOUND.
func (s *Store) CustomerCart(ctx context.Context, customerID string) (*model.Cart, error) {
	return s.readCart(ctx, customerCartSQL, customerID)
}

func (s *Store) readCart(ctx context.Context, sql string, arg any) (*model.Cart, error) {
	c, err := loadCart(ctx, s.pool, sql, arg)
	if err != nil {
		return nil, translate(err, "cart")
	}
	return c, nil
}

// lockCart locks a cart's row (its lines are not read).
func lockCart(ctx context.Context, tx pgx.Tx, id string) (*model.Cart, error) {
	rows, err := tx.Query(ctx, lockCartSQL, id)
	if err != nil {
		return nil, err
	}
	carts, err := pgx.CollectRows(rows, scanCart)
	if err == nil && len(carts) == 0 {
		return nil, model.NotFound("cart")
	}
	if err != nil {
		return nil, err
	}
	return carts[0], nil
}

// changeCart changes an OPEN cart in one round trip: a batch, one implicit transaction, that
// locks the cart, runs the change that queue queues (which must change nothing unless the
// cart is OPEN: see the comment of pipeline.go) and reads the cart back. A cart that is
// CHECKED_OUT or MERGED is CONFLICT. check, when set, runs on the locked cart once the
// change's results are read, and says why the change was refused if it was.
func (s *Store) changeCart(ctx context.Context, cartID string, queue func(*pgx.Batch), check func(*model.Cart) error) (*model.Cart, error) {
	if !model.IsUUID(cartID) {
		return nil, model.NotFound("cart")
	}
	var out *model.Cart
	err := s.batched(ctx, func() *pgx.Batch {
		b := &pgx.Batch{}
		var cart *model.Cart
		b.Queue(lockCartSQL, cartID).Query(func(rows pgx.Rows) error {
			var err error
			cart, err = openCart(rows)
			return err
		})
		queue(b)
		b.Queue(cartByIDSQL, cartID).Query(func(rows pgx.Rows) error {
			if check != nil {
				if err := check(cart); err != nil {
					return err
				}
			}
			var err error
			out, err = collectCart(rows)
			return err
		})
		return b
	})
	if err != nil {
		return nil, translate(err, "change cart")
	}
	return out, nil
}

// openCart reads the cart of lockCartSQL: NOT_FOUND when there is none, CONFLICT unless it
// is OPEN.
func openCart(rows pgx.Rows) (*model.Cart, error) {
	carts, err := pgx.CollectRows(rows, scanCart)
	switch {
	case err != nil:
		return nil, err
	case len(carts) == 0:
		return nil, model.NotFound("cart")
	case carts[0].Status != model.CartOpen:
		return nil, model.Errorf(model.CodeConflict, "the cart is %s: it can no longer change", carts[0].Status)
	}
	return carts[0], nil
}

// AddCartLines adds the quantities to the cart's lines (a new product gets a line). Each
// product must be ACTIVE, each resulting quantity 1 to 999 and covered by the product's
// available stock across warehouses (else OUT_OF_STOCK); the line snapshots the current
// price.
func (s *Store) AddCartLines(ctx context.Context, cartID string, lines []model.CartLineInput) (*model.Cart, error) {
	return s.setCartLines(ctx, cartID, lines, true)
}

// UpdateCartLines sets the quantities of the cart's lines, by the rules of AddCartLines; 0
// removes a line.
func (s *Store) UpdateCartLines(ctx context.Context, cartID string, lines []model.CartLineInput) (*model.Cart, error) {
	return s.setCartLines(ctx, cartID, lines, false)
}

// setLinesSQL sets the quantities $3 of products $2 in OPEN cart $1, adding what the cart
// holds when $4 (at most $5 of a product), in one statement run after the cart's lock. It checks every line as
// checkCartLine does and changes nothing unless every line passes (a quantity of 0 removes a
// line, unchecked); it returns, for each product asked about in order, what checkCartLine
// needs (the product's columns empty when it is unknown) and whether the lines were written.
const setLinesSQL = `
WITH open AS (
    SELECT id, currency FROM carts WHERE id = $1 AND status = 'OPEN'
), checked AS (
    SELECT x.n, x.id, coalesce(p.name, '') AS name, coalesce(p.status::text, '') AS status,
           coalesce(p.currency, '') AS currency, coalesce(p.price_cents, 0) AS price,
           coalesce(l.quantity, 0) AS in_cart,
           coalesce((SELECT sum(i.available_quantity) FROM inventory i WHERE i.product_id = x.id), 0)::int AS available,
           x.q + CASE WHEN $4 THEN coalesce(l.quantity, 0) ELSE 0 END AS quantity
    FROM unnest($2::uuid[], $3::int[]) WITH ORDINALITY AS x(id, q, n)
    LEFT JOIN products p ON p.id = x.id
    LEFT JOIN cart_lines l ON l.cart_id = $1 AND l.product_id = x.id
), valid AS (
    SELECT o.id FROM open o WHERE NOT EXISTS (
        SELECT FROM checked c WHERE c.quantity <> 0 AND NOT (c.status = 'ACTIVE' AND c.currency = o.currency
            AND c.quantity <= $5 AND c.quantity <= c.available))
), touched AS (
    UPDATE carts SET updated_at = now() WHERE id = (SELECT id FROM valid)
), removed AS (
    DELETE FROM cart_lines WHERE cart_id = (SELECT id FROM valid) AND product_id IN (SELECT id FROM checked WHERE quantity = 0)
), upserted AS (
    INSERT INTO cart_lines (cart_id, product_id, quantity, price_snapshot_cents)
    SELECT v.id, c.id, c.quantity, c.price FROM valid v, checked c WHERE c.quantity > 0 ORDER BY c.n
    ON CONFLICT (cart_id, product_id) DO UPDATE
    SET quantity = excluded.quantity, price_snapshot_cents = excluded.price_snapshot_cents
)
SELECT c.name, c.status, c.currency, c.price, c.in_cart, c.available, EXISTS (SELECT FROM valid)
FROM checked c ORDER BY c.n`

// cartProduct is a row of setLinesSQL.
type cartProduct struct {
	Name      string
	Status    model.ProductStatus
	Currency  string
	Price     model.Cents
	InCart    int
	Available int
	Written   bool
}

// setCartLines adds (add) or sets the quantities of lines.
func (s *Store) setCartLines(ctx context.Context, cartID string, lines []model.CartLineInput, add bool) (*model.Cart, error) {
	ids, err := lineProductIDs(lines, add)
	if err != nil {
		return nil, err
	}
	quantities := make([]int32, len(lines))
	for i, l := range lines {
		quantities[i] = int32(l.Quantity)
	}
	var products []cartProduct
	queue := func(b *pgx.Batch) {
		b.Queue(setLinesSQL, cartID, uuidArray(ids), quantities, add, maxLineQuantity).Query(func(rows pgx.Rows) error {
			var err error
			products, err = pgx.CollectRows(rows, pgx.RowToStructByPos[cartProduct])
			return err
		})
	}
	return s.changeCart(ctx, cartID, queue, func(cart *model.Cart) error {
		if len(products) == 0 || products[0].Written {
			return nil
		}
		for i, l := range lines {
			p, q := products[i], l.Quantity
			if add {
				q += p.InCart
			}
			if q == 0 {
				continue
			}
			if err := checkCartLine(i, p, q, cart.Currency); err != nil {
				return err
			}
		}
		return fmt.Errorf("the cart's lines were not written, yet every line passes: %+v", products)
	})
}

// lineProductIDs checks the lines' own values and returns their product ids.
func lineProductIDs(lines []model.CartLineInput, add bool) ([]string, error) {
	least := 0
	if add {
		least = 1
	}
	ids := make([]string, len(lines))
	for i, l := range lines {
		if !model.IsUUID(l.ProductID) || slices.Contains(ids[:i], l.ProductID) {
			return nil, model.InvalidArgument(fmt.Sprintf("lines.%d.productId", i), "unknown or repeated product")
		}
		if l.Quantity < least || l.Quantity > maxLineQuantity {
			return nil, model.InvalidArgument(fmt.Sprintf("lines.%d.quantity", i), "quantity must be between %d and %d", least, maxLineQuantity)
		}
		ids[i] = l.ProductID
	}
	return ids, nil
}

// checkCartLine checks that line i may hold q of product p.
func checkCartLine(i int, p cartProduct, q int, currency string) error {
	switch {
	case p.Status == "":
		return model.InvalidArgument(fmt.Sprintf("lines.%d.productId", i), "unknown product")
	case p.Status != model.ProductStatusActive:
		// The product is not public: its name is not the caller's to see.
		return model.InvalidArgument(fmt.Sprintf("lines.%d.productId", i), "this product is not for sale")
	case p.Currency != currency:
		return model.InvalidArgument(fmt.Sprintf("lines.%d.productId", i), "%s is sold in %s, the cart is in %s", p.Name, p.Currency, currency)
	case q > maxLineQuantity:
		return model.InvalidArgument(fmt.Sprintf("lines.%d.quantity", i), "a cart holds at most %d of a product; this would make %d", maxLineQuantity, q)
	case q > p.Available:
		return &model.Error{Code: model.CodeOutOfStock, Argument: fmt.Sprintf("lines.%d.quantity", i),
			Message: fmt.Sprintf("only %d of %s available, %d asked for", p.Available, p.Name, q)}
	}
	return nil
}

// RemoveCartLines removes the lines of these products from the cart; products without a
// line are ignored.
func (s *Store) RemoveCartLines(ctx context.Context, cartID string, productIDs []string) (*model.Cart, error) {
	for i, id := range productIDs {
		if !model.IsUUID(id) {
			return nil, model.InvalidArgument(fmt.Sprintf("productIds.%d", i), "unknown product")
		}
	}
	return s.changeCart(ctx, cartID, func(b *pgx.Batch) {
		b.Queue(removeLinesSQL, cartID, uuidArray(productIDs))
	}, nil)
}

// removeLinesSQL removes the lines of products $2 from cart $1 if it is OPEN.
const removeLinesSQL = `
WITH open AS (
    UPDATE carts SET updated_at = now() WHERE id = $1 AND status = 'OPEN' RETURNING id
)
DELETE FROM cart_lines WHERE cart_id = (SELECT id FROM open) AND product_id = ANY($2::uuid[])`

// mergeCartSQL moves the lines of guest cart $1 into customer $2's OPEN cart, if there is
// one: quantities add up (at most 999) and lines take the current price, as any change does.
// The guest cart becomes MERGED. Updating the customer's cart first locks it, so that a
// concurrent checkout of it either finishes before (and the cart is no longer OPEN) or waits.
const mergeCartSQL = `
WITH target AS (
    UPDATE carts SET updated_at = now() WHERE customer_id = $2 AND status = 'OPEN' RETURNING id
), merged AS (
    INSERT INTO cart_lines (cart_id, product_id, quantity, price_snapshot_cents, added_at)
    SELECT target.id, l.product_id, l.quantity, p.price_cents, l.added_at
    FROM target, cart_lines l JOIN products p ON p.id = l.product_id
    WHERE l.cart_id = $1
    ON CONFLICT (cart_id, product_id) DO UPDATE
    SET quantity = least(cart_lines.quantity + excluded.quantity, 999),
        price_snapshot_cents = excluded.price_snapshot_cents
), retired AS (
    UPDATE carts SET status = 'MERGED', updated_at = now() WHERE id = $1 AND EXISTS (SELECT FROM target)
)
SELECT id::text FROM target`

// attachCartSQL makes a guest cart the customer's; its token no longer opens it.
const attachCartSQL = `UPDATE carts SET customer_id = $2, token_hash = NULL, updated_at = now() WHERE id = $1`

// AttachCartToCustomer gives an OPEN guest cart to a customer who signed in. If the customer
// has an OPEN cart already, the guest lines merge into it (see mergeCartSQL) and that cart
// is returned; otherwise the guest cart becomes theirs. A cart of another customer is
// FORBIDDEN; attaching a cart to its own customer again returns it unchanged.
func (s *Store) AttachCartToCustomer(ctx context.Context, cartID, customerID string) (*model.Cart, error) {
	if customerID == "" {
		return nil, model.InvalidArgument("customerId", "a customer is required")
	}
	if !model.IsUUID(cartID) {
		return nil, model.NotFound("cart")
	}
	var out *model.Cart
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		target, err := attach(ctx, tx, cartID, customerID)
		if err != nil {
			return err
		}
		out, err = loadCart(ctx, tx, cartByIDSQL, target)
		return err
	})
	if err != nil {
		return nil, translate(err, "attach cart")
	}
	return out, nil
}

// attach does the work of AttachCartToCustomer and returns the id of the customer's cart.
func attach(ctx context.Context, tx pgx.Tx, cartID, customerID string) (string, error) {
	guest, err := lockCart(ctx, tx, cartID)
	switch {
	case err != nil:
		return "", err
	case guest.CustomerID == customerID:
		return cartID, nil
	case guest.CustomerID != "":
		return "", model.Errorf(model.CodeForbidden, "the cart belongs to another customer")
	case guest.Status != model.CartOpen:
		return "", model.Errorf(model.CodeConflict, "the cart is %s: it can no longer change", guest.Status)
	}
	// Under this lock no other OPEN cart can appear for the customer (CreateCart takes it
	// too), so when there is none to merge into, the guest cart can become it.
	if err := lockCustomerCarts(ctx, tx, customerID); err != nil {
		return "", err
	}
	rows, err := tx.Query(ctx, mergeCartSQL, cartID, customerID)
	if err != nil {
		return "", err
	}
	targets, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", err
	}
	if len(targets) > 0 {
		return targets[0], nil
	}
	_, err = tx.Exec(ctx, attachCartSQL, cartID, customerID)
	return cartID, err
}
