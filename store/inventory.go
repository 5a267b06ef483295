package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

// availabilitySQL sums stock per product; products without stock rows are left out.
const availabilitySQL = `
SELECT product_id::text, sum(available_quantity)::int
FROM inventory WHERE product_id = ANY($1::uuid[])
GROUP BY product_id`

// Availability returns the stock available across warehouses for each product id; a product
// without stock rows has no entry.
func (s *Store) Availability(ctx context.Context, productIDs []string) (map[string]*model.Availability, error) {
	rows, err := s.read(ctx).Query(ctx, availabilitySQL, uuidArray(productIDs))
	if err != nil {
		return nil, fmt.Errorf("availability: %w", err)
	}
	out := make(map[string]*model.Availability, len(productIDs))
	var id string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		out[id] = &model.Availability{InStock: n > 0, Available: n}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("availability: %w", err)
	}
	return out, nil
}

// levelColumns are the columns of an inventory level, read by scanLevel.
const levelColumns = `i.product_id::text, i.quantity, i.reserved_quantity, i.available_quantity,
       i.low_stock_threshold, i.updated_at, w.id, w.code, w.name, w.priority`

func scanLevel(row pgx.CollectableRow) (*model.InventoryLevel, error) {
	l := model.InventoryLevel{Warehouse: &model.Warehouse{}}
	w := l.Warehouse
	err := row.Scan(&l.ProductID, &l.Quantity, &l.Reserved, &l.Available, &l.LowStockThreshold, &l.UpdatedAt,
		&w.ID, &w.Code, &w.Name, &w.Priority)
	return &l, err
}

const inventorySQL = `
SELECT ` + levelColumns + `
FROM inventory i JOIN warehouses w ON w.id = i.warehouse_id
WHERE i.product_id = ANY($1::uuid[])
ORDER BY w.priority, w.code`

// Inventory returns the stock of each product per warehouse, by warehouse priority.
func (s *Store) Inventory(ctx context.Context, productIDs []string) (map[string][]*model.InventoryLevel, error) {
	rows, err := s.read(ctx).Query(ctx, inventorySQL, uuidArray(productIDs))
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	levels, err := pgx.CollectRows(rows, scanLevel)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	out := make(map[string][]*model.InventoryLevel, len(productIDs))
	for _, l := range levels {
		out[l.ProductID] = append(out[l.ProductID], l)
	}
	return out, nil
}

const warehouseColumns = `id, code, name, priority`

// Warehouses returns every warehouse by priority.
func (s *Store) Warehouses(ctx context.Context) ([]*model.Warehouse, error) {
	return s.queryWarehouses(ctx, `SELECT `+warehouseColumns+` FROM warehouses ORDER BY priority, code`)
}

// WarehousesByIDs returns the warehouses with these ids, in no particular order.
func (s *Store) WarehousesByIDs(ctx context.Context, ids []string) ([]*model.Warehouse, error) {
	return s.queryWarehouses(ctx, `SELECT `+warehouseColumns+` FROM warehouses WHERE id = ANY($1::uuid[])`, uuidArray(ids))
}

func (s *Store) queryWarehouses(ctx context.Context, sql string, args ...any) ([]*model.Warehouse, error) {
	rows, err := s.read(ctx).Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("warehouses: %w", err)
	}
	ws, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[model.Warehouse])
	if err != nil {
		return nil, fmt.Errorf("warehouses: %w", err)
	}
	return ws, nil
}
