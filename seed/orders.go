package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// OrderOptions says what order history to generate.
type OrderOptions struct {
	Orders int   // orders over the year
	Seed   int64 // same seed and catalog, same history
	// End is when the history ends (default: the catalog's base instant); it covers the
	// 365 days before it.
	End time.Time
	// FactsOnly writes the analytics facts alone, without carts, orders and lines: for
	// benchmarks of the analytics path at tens of millions of lines.
	FactsOnly bool
	Progress  io.Writer
}

// OrderStats counts what a history load wrote.
type OrderStats struct {
	Orders, Lines, Facts int
	Elapsed              time.Duration
}

// ErrNoProducts is returned when there is no active product to sell.
var ErrNoProducts = errors.New("no active products: seed the catalog first")

// historyDays is the length of a generated history.
const historyDays = 365

// cancelRate is the share of orders cancelled after they were placed.
const cancelRate = 0.03

// Orders generates a year of orders from the catalog in PostgreSQL and loads them in one
// transaction through COPY: carts, orders, their lines and the analytics facts, with a
// negative fact for each line of a cancelled order. Volumes follow the week (weekends
// busier), the season (December high, summer low) and the day (evening peak), with Black
// Friday and Cyber Monday at about ten times a normal day. Products are drawn by
// popularity, baskets hold one to six lines, prices and costs are the catalog's. No outbox
// rows are written: this is history, not news.
func Orders(ctx context.Context, pool *pgxpool.Pool, opts OrderOptions) (OrderStats, error) {
	if opts.Orders < 0 {
		return OrderStats{}, fmt.Errorf("orders must not be negative, got %d", opts.Orders)
	}
	if opts.End.IsZero() {
		opts.End = base
	}
	began := time.Now()
	var stats OrderStats
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		shop, err := loadShop(ctx, tx)
		if err != nil {
			return err
		}
		stats, err = copyHistory(ctx, tx, newHistory(shop, opts), opts)
		return err
	})
	stats.Elapsed = time.Since(began)
	return stats, err
}

// sellable is an active product as a generated order sees it.
type sellable struct {
	id, category  uuid
	brand         *uuid
	sku, name     string
	price, cost   int64
	cumPopularity float64
}

// shop is what orders are drawn from.
type shop struct {
	products   []sellable
	warehouses []uuid
}

const shopProductsSQL = `
SELECT id, category_id, brand_id, sku, name, price_cents, cost_cents, popularity
FROM products WHERE status = 'ACTIVE' ORDER BY id`

func loadShop(ctx context.Context, tx pgx.Tx) (*shop, error) {
	rows, err := tx.Query(ctx, shopProductsSQL)
	if err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	s := &shop{}
	var cum float64
	var p sellable
	var popularity int32
	_, err = pgx.ForEachRow(rows, []any{&p.id, &p.category, &p.brand, &p.sku, &p.name, &p.price, &p.cost, &popularity}, func() error {
		cum += 1 + float64(popularity) // every product sells a little
		p.cumPopularity = cum
		s.products = append(s.products, p)
		p.brand = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read products: %w", err)
	}
	if len(s.products) == 0 {
		return nil, ErrNoProducts
	}
	rows, err = tx.Query(ctx, `SELECT id FROM warehouses ORDER BY priority, id`)
	if err != nil {
		return nil, fmt.Errorf("read warehouses: %w", err)
	}
	s.warehouses, err = pgx.CollectRows(rows, pgx.RowTo[uuid])
	if err != nil || len(s.warehouses) == 0 {
		return nil, fmt.Errorf("read warehouses (found %d): %w", len(s.warehouses), err)
	}
	return s, nil
}

// draw picks a product with probability proportional to its popularity.
func (s *shop) draw(r *rand.Rand) *sellable {
	x := r.Float64() * s.products[len(s.products)-1].cumPopularity
	i := sort.Search(len(s.products), func(i int) bool { return s.products[i].cumPopularity > x })
	return &s.products[i]
}

// dayWeights is the relative volume of each day of the history: week, season and the
// Black Friday weekend.
func dayWeights(start time.Time) []float64 {
	weekday := [7]float64{1.2, 0.9, 0.85, 0.9, 0.95, 1.1, 1.3} // Sunday first
	w := make([]float64, historyDays)
	for d := range w {
		day := start.AddDate(0, 0, d)
		season := 1 + 0.25*math.Cos(2*math.Pi*float64(day.YearDay()-350)/365)
		w[d] = weekday[day.Weekday()] * season * surge(day)
	}
	return w
}

// surge is the multiplier of the days around Black Friday (the day after the fourth
// Thursday of November) and Cyber Monday (three days later).
func surge(day time.Time) float64 {
	if day.Month() != time.November && day.Month() != time.December {
		return 1
	}
	nov1 := time.Date(day.Year(), time.November, 1, 0, 0, 0, 0, time.UTC)
	thanksgiving := nov1.AddDate(0, 0, (int(time.Thursday)-int(nov1.Weekday())+7)%7+21)
	switch int(day.Sub(thanksgiving).Hours() / 24) {
	case 0:
		return 3
	case 1, 4: // Black Friday, Cyber Monday
		return 10
	case 2, 3:
		return 6
	}
	return 1
}

// hourWeights is the relative volume of each hour of a day: quiet nights, a lunchtime and a
// larger evening peak.
var hourWeights = [24]float64{2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 7, 6, 6, 6, 7, 9, 11, 12, 10, 6, 3}

// HasSales tells whether the database holds sales already, such as a year of seeded orders.
func HasSales(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var any bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sales_facts)`).Scan(&any)
	return any, err
}
