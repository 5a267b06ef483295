package seed

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/graph/model"
)

// salesSQL reads what a synthetic sales history is drawn from: each active product's
// popularity, and its category path for per-category rankings.
const salesSQL = `
SELECT p.id::text, c.path::text[], p.popularity
FROM products p JOIN categories c ON c.id = p.category_id
WHERE p.status = 'ACTIVE' AND p.popularity > 0
ORDER BY p.id`

// Order is the sales of one synthetic order.
type Order struct {
	At    time.Time
	Sales []model.Sale
}

// SalesHistory draws a synthetic history of the last days days before now from the
// catalog in PostgreSQL: each active product sells in proportion to its popularity, on days
// drawn at random, and a few products have a recent burst so that trending differs from
// bestselling. The same catalog, seed and now give the same history. It stands in for real
// orders until checkout records them.
func SalesHistory(ctx context.Context, pool *pgxpool.Pool, seed int64, now time.Time, days int) ([]Order, error) {
	rows, err := pool.Query(ctx, salesSQL)
	if err != nil {
		return nil, fmt.Errorf("read products for sales history: %w", err)
	}
	var orders []Order
	var id string
	var path []string
	var popularity int
	_, err = pgx.ForEachRow(rows, []any{&id, &path, &popularity}, func() error {
		orders = append(orders, productOrders(seed, now, days, id, path, popularity)...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read products for sales history: %w", err)
	}
	return orders, nil
}

// productOrders draws the orders of one product from a generator of its own, so that the
// history of a product does not depend on the rest of the catalog.
func productOrders(seed int64, now time.Time, days int, id string, path []string, popularity int) []Order {
	h := fnv.New64a()
	h.Write([]byte(id))
	r := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
	orders := 1 + popularity/200
	if r.IntN(50) == 0 {
		orders += 5 + r.IntN(20) // a burst in the last two days: this product is trending
		days = min(days, 2)
	}
	out := make([]Order, orders)
	for i := range out {
		ago := time.Duration(r.Float64() * float64(days) * float64(24*time.Hour))
		out[i] = Order{At: now.Add(-ago), Sales: []model.Sale{{ProductID: id, CategoryIDs: path, Units: 1 + r.IntN(3)}}}
	}
	return out
}
