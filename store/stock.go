package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

// Stock changes all go through changeStock, one statement that updates the inventory rows,
// bumps their versions, writes a stock movement for every change of quantity and a
// "stock.changed" outbox row for every row. Reservations (checkout, cancellation, expiry)
// change reserved_quantity only: they are not stock movements, since nothing entered or left
// a warehouse; order_allocations is their trail. Fulfilment and merchandisers' corrections
// change quantity and are movements.

// stockChange is a change of one inventory row: deltas of quantity and reserved_quantity and,
// when set, a new low-stock threshold.
type stockChange struct {
	ProductID   string `json:"product_id"`
	WarehouseID string `json:"warehouse_id"`
	Quantity    int    `json:"quantity"`
	Reserved    int    `json:"reserved"`
	Threshold   *int   `json:"threshold"`
}

// movement says why stock changed, for the audit trail and the outbox.
type movement struct {
	reason, actor string
	orderID       *string
}

// lockedStock is an inventory row read under its lock.
type lockedStock struct {
	ProductID   string
	WarehouseID string
	Priority    int
	Quantity    int
	Reserved    int
}

// lockStockSQL locks the inventory rows of the products (of one warehouse when $2 is set)
// in one statement and in a fixed order, (product_id, warehouse_id), so that transactions
// locking overlapping rows queue up instead of deadlocking.
const lockStockSQL = `
SELECT i.product_id::text, i.warehouse_id::text, w.priority, i.quantity, i.reserved_quantity
FROM inventory i JOIN warehouses w ON w.id = i.warehouse_id
WHERE i.product_id = ANY($1::uuid[]) AND ($2::uuid IS NULL OR i.warehouse_id = $2::uuid)
ORDER BY i.product_id, i.warehouse_id
FOR UPDATE OF i`

// lockCartStockSQL locks, as lockStockSQL does, the inventory rows of the products in cart $1.
const lockCartStockSQL = `
SELECT i.product_id::text, i.warehouse_id::text, w.priority, i.quantity, i.reserved_quantity
FROM inventory i JOIN warehouses w ON w.id = i.warehouse_id
WHERE i.product_id IN (SELECT product_id FROM cart_lines WHERE cart_id = $1)
ORDER BY i.product_id, i.warehouse_id
FOR UPDATE OF i`

func lockStock(ctx context.Context, tx pgx.Tx, productIDs []string, warehouseID *string) ([]lockedStock, error) {
	rows, err := tx.Query(ctx, lockStockSQL, uuidArray(productIDs), warehouseID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[lockedStock])
}

// changeStockSQL applies stock changes to rows the transaction has locked (lockStock) and
// logs them; available_before is worked back from the new row and the deltas.
const changeStockSQL = `
WITH d AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
        AS d(product_id uuid, warehouse_id uuid, quantity int, reserved int, threshold int)
), changed AS (
    UPDATE inventory i SET quantity = i.quantity + d.quantity,
        reserved_quantity = i.reserved_quantity + d.reserved,
        low_stock_threshold = coalesce(d.threshold, i.low_stock_threshold),
        version = i.version + 1, updated_at = now()
    FROM d WHERE i.product_id = d.product_id AND i.warehouse_id = d.warehouse_id
    RETURNING i.*, d.quantity AS dq, d.reserved AS dr
), moved AS (
    INSERT INTO stock_movements (product_id, warehouse_id, delta, quantity_after, reason, actor, order_id)
    SELECT product_id, warehouse_id, dq, quantity, $2, $3, $4 FROM changed WHERE dq <> 0
), logged AS (
    INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload)
    SELECT 'inventory', product_id::text, 'stock.changed', version, jsonb_build_object(
        'warehouse_id', warehouse_id, 'available_before', available_quantity - dq + dr,
        'available_after', available_quantity, 'low_stock_threshold', low_stock_threshold, 'reason', $2)
    FROM changed
)
SELECT ` + levelColumns + ` FROM changed i JOIN warehouses w ON w.id = i.warehouse_id
ORDER BY i.product_id, w.priority`

// changeStock applies changes to inventory rows the transaction has locked and returns them.
func changeStock(ctx context.Context, tx pgx.Tx, changes []stockChange, m movement) ([]*model.InventoryLevel, error) {
	rows, err := tx.Query(ctx, changeStockSQL, changes, m.reason, m.actor, m.orderID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanLevel)
}

// SetStock sets the quantity of a product in a warehouse, as counted by actor, and records
// why. A positive quantity stocks a product the warehouse did not hold yet; the quantity can
// never go below what orders have reserved (CONFLICT). Setting the current quantity again
// is no movement, but still bumps the version and goes to the outbox with its reason, as a
// confirmed count.
func (s *Store) SetStock(ctx context.Context, productID, warehouseID string, quantity int, reason, actor string) (*model.InventoryLevel, error) {
	if quantity < 0 {
		return nil, model.InvalidArgument("quantity", "quantity must not be negative")
	}
	return s.moveStock(ctx, productID, warehouseID, "quantity", movement{reason: reason, actor: actor},
		func(current int) int { return quantity - current })
}

// AdjustStock adds delta (negative: removes) to the quantity of a product in a warehouse and
// records why. It follows the rules of SetStock.
func (s *Store) AdjustStock(ctx context.Context, productID, warehouseID string, delta int, reason, actor string) (*model.InventoryLevel, error) {
	if delta == 0 {
		return nil, model.InvalidArgument("delta", "delta must not be zero")
	}
	return s.moveStock(ctx, productID, warehouseID, "delta", movement{reason: reason, actor: actor},
		func(int) int { return delta })
}

// ensureStockSQL creates a missing inventory row; unknown ids fail on the foreign keys.
const ensureStockSQL = `INSERT INTO inventory (product_id, warehouse_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`

// moveStock changes one inventory row's quantity by delta(current quantity); arg names the
// argument that a refusal is about.
func (s *Store) moveStock(ctx context.Context, productID, warehouseID, arg string, m movement, delta func(int) int) (*model.InventoryLevel, error) {
	if n := utf8.RuneCountInString(strings.TrimSpace(m.reason)); n == 0 || n > model.MaxReasonLen {
		return nil, model.InvalidArgument("reason", "a reason of 1 to %d characters is required", model.MaxReasonLen)
	}
	var level *model.InventoryLevel
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		// A change that would put stock into an empty row stocks the product there.
		row, err := lockOneStock(ctx, tx, productID, warehouseID, delta(0) > 0)
		if err != nil {
			return err
		}
		d := delta(row.Quantity)
		if err := checkQuantity(row, row.Quantity+d, arg); err != nil {
			return err
		}
		level, err = oneLevel(changeStock(ctx, tx, []stockChange{{ProductID: productID, WarehouseID: warehouseID, Quantity: d}}, m))
		return err
	})
	if err != nil {
		return nil, translate(err, "change stock")
	}
	return level, nil
}

// lockOneStock locks the inventory row of a product in a warehouse, creating it first when
// create is set (the change will stock the product there).
func lockOneStock(ctx context.Context, tx pgx.Tx, productID, warehouseID string, create bool) (lockedStock, error) {
	if !model.IsUUID(productID) || !model.IsUUID(warehouseID) {
		return lockedStock{}, model.NotFound("inventory level")
	}
	if create {
		if _, err := tx.Exec(ctx, ensureStockSQL, productID, warehouseID); err != nil {
			return lockedStock{}, err
		}
	}
	rows, err := lockStock(ctx, tx, []string{productID}, &warehouseID)
	if err != nil {
		return lockedStock{}, err
	}
	if len(rows) == 0 {
		return lockedStock{}, &model.Error{Code: model.CodeNotFound, Message: "the product is not stocked in this warehouse"}
	}
	return rows[0], nil
}

// checkQuantity refuses a new quantity below zero or below the reservations, in words rather
// than as a check violation.
func checkQuantity(row lockedStock, after int, arg string) error {
	if after < 0 {
		return model.InvalidArgument(arg, "stock cannot go negative: it is %d", row.Quantity)
	}
	if after < row.Reserved {
		return &model.Error{Code: model.CodeConflict, Argument: arg,
			Message: fmt.Sprintf("orders have reserved %d units: the stock cannot go below that (it would be %d)", row.Reserved, after)}
	}
	return nil
}

func oneLevel(levels []*model.InventoryLevel, err error) (*model.InventoryLevel, error) {
	if err != nil {
		return nil, err
	}
	if len(levels) != 1 {
		return nil, errors.New("stock change: no row changed")
	}
	return levels[0], nil
}

// SetLowStockThreshold sets the available quantity at or below which a product's stock in a
// warehouse counts as low. The change goes to the outbox, so that alerts follow it, but it
// is no stock movement.
func (s *Store) SetLowStockThreshold(ctx context.Context, productID, warehouseID string, threshold int) (*model.InventoryLevel, error) {
	if threshold < 0 {
		return nil, model.InvalidArgument("threshold", "the threshold must not be negative")
	}
	var level *model.InventoryLevel
	err := s.retryTx(ctx, func(tx pgx.Tx) error {
		if _, err := lockOneStock(ctx, tx, productID, warehouseID, false); err != nil {
			return err
		}
		var err error
		change := stockChange{ProductID: productID, WarehouseID: warehouseID, Threshold: &threshold}
		level, err = oneLevel(changeStock(ctx, tx, []stockChange{change}, movement{reason: "threshold"}))
		return err
	})
	if err != nil {
		return nil, translate(err, "set low-stock threshold")
	}
	return level, nil
}

const stockMovementsSQL = `
SELECT id, product_id::text, warehouse_id::text, delta, quantity_after, reason, actor, created_at
FROM stock_movements WHERE product_id = $1::uuid
ORDER BY created_at DESC, id DESC LIMIT $2`

// StockMovements returns the latest changes of a product's quantity, newest first, at most
// limit (1 to MaxPageSize) of them.
func (s *Store) StockMovements(ctx context.Context, productID string, limit int) ([]*model.StockMovement, error) {
	if limit < 1 || limit > model.MaxPageSize {
		return nil, model.InvalidArgument("first", "first must be between 1 and %d", model.MaxPageSize)
	}
	if !model.IsUUID(productID) {
		return []*model.StockMovement{}, nil
	}
	rows, err := s.read(ctx).Query(ctx, stockMovementsSQL, productID, limit)
	if err != nil {
		return nil, fmt.Errorf("stock movements: %w", err)
	}
	ms, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[model.StockMovement])
	if err != nil {
		return nil, fmt.Errorf("stock movements: %w", err)
	}
	return ms, nil
}
