package seed

import (
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	categoryColumns  = []string{"id", "parent_id", "path", "slug", "name", "created_at", "updated_at"}
	brandColumns     = []string{"id", "slug", "name", "created_at", "updated_at"}
	warehouseColumns = []string{"id", "code", "name", "priority", "created_at"}
)

func (c *catalog) categoryRows(m *meter) pgx.CopyFromSource {
	return rowsOf(m, c.categories, func(cat category) []any {
		return []any{cat.id, cat.parent, cat.path, cat.slug, cat.name, launched, launched}
	})
}

func (c *catalog) brandRows(m *meter) pgx.CopyFromSource {
	return rowsOf(m, c.brands, func(b brand) []any {
		return []any{b.id, b.slug, b.name, launched, launched}
	})
}

func (c *catalog) warehouseRows(m *meter) pgx.CopyFromSource {
	return rowsOf(m, c.warehouses, func(w warehouse) []any {
		return []any{w.id, w.code, w.name, w.priority, launched}
	})
}

// rowsOf copies the rows of a small table held in memory.
func rowsOf[T any](m *meter, items []T, row func(T) []any) pgx.CopyFromSource {
	i := 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(items) {
			return nil, nil
		}
		if err := m.tick(); err != nil {
			return nil, err
		}
		i++
		return row(items[i-1]), nil
	})
}

// productRows generates n products as COPY asks for them, so that memory stays flat whatever n.
func (c *catalog) productRows(m *meter, n int) pgx.CopyFromSource {
	g := newRNG()
	i := 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		if err := m.tick(); err != nil {
			return nil, err
		}
		i++
		return c.product(g, i-1)
	})
}

// stockRows generates a row per product and warehouse, product by product, regenerating each
// product's id from its stream.
func (c *catalog) stockRows(m *meter, n int) pgx.CopyFromSource {
	ids, g := newRNG(), newRNG()
	qty := make([]int, len(c.warehouses))
	var (
		product     uuid
		counted     time.Time
		next, house = 0, len(c.warehouses) // house == len: draw the next product
	)
	return pgx.CopyFromFunc(func() ([]any, error) {
		if house == len(c.warehouses) {
			if next == n {
				return nil, nil
			}
			product, counted = c.productID(ids, next), c.stock(g, next, qty)
			next, house = next+1, 0
		}
		if err := m.tick(); err != nil {
			return nil, err
		}
		house++
		return []any{product, c.warehouses[house-1].id, qty[house-1], counted}, nil
	})
}
