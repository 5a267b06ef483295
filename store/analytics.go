package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
)

// Sales analytics read relations that migrations 0004 and 0006 build in one of two ways (see
// their files): partial sums of the sales facts per UTC hour or day (sales_hourly*,
// sales_daily*), at four levels: per (product, category, brand) in sales_hourly and
// sales_daily, and coarser, per category (*_by_category), per brand (*_by_brand) or
// neither (*_totals). With TimescaleDB they are real-time continuous aggregates; without it,
// views over rollup tables, a watermark and an invalidation log with the same semantics.
// Everything here is the same SQL in both modes.

// Analytics modes, as AnalyticsMode reports them.
const (
	AnalyticsTimescaleDB = "timescaledb"
	AnalyticsPostgres    = "postgres"
)

// AnalyticsMode reports how the database aggregates sales: AnalyticsTimescaleDB or
// AnalyticsPostgres. Migration 0004 chose it, once: TimescaleDB when the server offered it.
func (s *Store) AnalyticsMode(ctx context.Context) (string, error) {
	var mode string
	if err := s.pool.QueryRow(ctx, `SELECT analytics_mode()`).Scan(&mode); err != nil {
		return "", fmt.Errorf("analytics mode: %w", err)
	}
	return mode, nil
}

// DefaultCompressAfter is the age at which raw sales facts are compressed (TimescaleDB).
const DefaultCompressAfter = 7 * 24 * time.Hour

// AnalyticsSettings configure the storage of raw sales facts.
type AnalyticsSettings struct {
	// CompressAfter is the age at which raw facts are compressed (TimescaleDB only; plain
	// PostgreSQL ignores it): 0 means DefaultCompressAfter, a negative value turns
	// compression off.
	CompressAfter time.Duration
	// RetainFor is the age at which raw facts are dropped (whole chunks or partitions);
	// 0 keeps them forever. The aggregates keep the sales of dropped facts: refreshes then
	// re-aggregate late changes only within RetainFor. At least 7 days when set.
	RetainFor time.Duration
}

const configureAnalyticsSQL = `SELECT analytics_configure($1::interval, $2::interval)`

// ConfigureAnalytics applies settings: the compression and retention policies with
// TimescaleDB, the retention of daily partitions without it. It changes only what differs,
// so the server calls it at every start.
func (s *Store) ConfigureAnalytics(ctx context.Context, settings AnalyticsSettings) error {
	if settings.RetainFor < 0 || (settings.RetainFor > 0 && settings.RetainFor < 7*24*time.Hour) {
		return model.InvalidArgument("retainFor", "retention must be 0 (keep everything) or at least 7 days, not %s", settings.RetainFor)
	}
	compress := settings.CompressAfter
	if compress == 0 {
		compress = DefaultCompressAfter
	}
	if _, err := s.pool.Exec(ctx, configureAnalyticsSQL, interval(compress), interval(settings.RetainFor)); err != nil {
		return fmt.Errorf("configure analytics: %w", err)
	}
	return nil
}

// interval renders a positive duration as an interval literal, and anything else as NULL.
func interval(d time.Duration) *string {
	if d <= 0 {
		return nil
	}
	v := fmt.Sprintf("%d microseconds", d.Microseconds())
	if d%(24*time.Hour) == 0 {
		v = fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return &v
}

// RefreshAnalytics brings the aggregates up to date now: it materializes the complete hours
// up to an hour ago and re-aggregates the ranges where facts changed below the watermark,
// at every level (plain: the analytics_refresh procedure; TimescaleDB: the refresh
// policies' jobs, each aggregate's after those of its sources). Before a refresh, new facts
// above the watermark count already (real-time aggregation), late facts below it do not.
//
// TimescaleDB refuses to refresh an aggregate while its scheduler refreshes an overlapping
// window: RefreshAnalytics then waits and runs the jobs again, until ctx ends.
func (s *Store) RefreshAnalytics(ctx context.Context) error {
	const lockNotAvailable = "55P03" // TimescaleDB: "... due to a concurrent refresh"
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		// A procedure that commits as it goes: it must not run inside a transaction block.
		_, err := s.pool.Exec(ctx, `CALL analytics_refresh()`, pgx.QueryExecModeSimpleProtocol)
		if err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != lockNotAvailable || !db.Sleep(ctx, wait) {
			return fmt.Errorf("refresh analytics: %w", err)
		}
	}
}

// CreateAnalyticsPartitions creates the partitions of the coming days (from tomorrow) and drops
// those past the retention (plain PostgreSQL; TimescaleDB creates and drops chunks itself,
// and this does nothing). It returns how many partitions it created and dropped. It never
// attaches a partition for a day already begun, which checkouts may be writing facts of
// (see migration 0009): today's comes from CreateAnalyticsPartitionsFor before serving.
func (s *Store) CreateAnalyticsPartitions(ctx context.Context) (created, dropped int, err error) {
	return s.createPartitions(ctx, nil, nil)
}

// CreateAnalyticsPartitionsFor is CreateAnalyticsPartitions that also creates the partitions
// of the UTC days of [from, to) whose facts are all still to come: call it before anyone writes
// facts of those days, as the server does for today before it serves and a bulk load of
// history before it loads. A day that has facts in the default partition keeps them there.
func (s *Store) CreateAnalyticsPartitionsFor(ctx context.Context, from, to time.Time) (created, dropped int, err error) {
	return s.createPartitions(ctx, &from, &to)
}

// PrepareAnalytics readies the database for writing facts: today's partition and those of
// the coming days (plain mode). The server calls it before it serves.
func (s *Store) PrepareAnalytics(ctx context.Context) error {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	_, _, err := s.CreateAnalyticsPartitionsFor(ctx, today, today.Add(24*time.Hour))
	return err
}

const createPartitionsSQL = `CALL analytics_create_partitions(from_day => $1, to_day => $2)`

func (s *Store) createPartitions(ctx context.Context, from, to *time.Time) (created, dropped int, err error) {
	err = s.pool.QueryRow(ctx, createPartitionsSQL, pgx.QueryExecModeSimpleProtocol, from, to).Scan(&created, &dropped)
	if err != nil {
		return 0, 0, fmt.Errorf("create analytics partitions: %w", err)
	}
	return created, dropped, nil
}

// RunAnalyticsRefresh keeps the aggregates fresh until ctx ends. In plain mode it refreshes
// them and maintains the partitions every interval, on one instance at a time: every
// instance runs it under the supervisor, the holder of db.LockAnalyticsRefresh leads and the
// others stand by. With TimescaleDB, the database's own job scheduler runs the refresh,
// compression and retention policies, so there is nothing to do.
func (s *Store) RunAnalyticsRefresh(ctx context.Context, every time.Duration, log *slog.Logger) error {
	log = log.With("job", "analytics-refresh")
	mode, err := s.AnalyticsMode(ctx)
	if err != nil {
		return err
	}
	if mode == AnalyticsTimescaleDB {
		log.Debug("TimescaleDB's job scheduler refreshes the aggregates")
		<-ctx.Done()
		return ctx.Err()
	}
	return db.LeadEvery(ctx, s.pool, db.LockAnalyticsRefresh, every, log, func(ctx context.Context) error {
		created, dropped, err := s.CreateAnalyticsPartitions(ctx)
		if err != nil {
			// Partitions are made days ahead: a busy moment is fine, try again next time.
			log.Warn("analytics partitions", "err", err)
		} else if created+dropped > 0 {
			log.Info("analytics partitions", "created", created, "dropped", dropped)
		}
		start := time.Now()
		if err := s.RefreshAnalytics(ctx); err != nil && ctx.Err() == nil {
			// Say a writer kept its transaction open too long: the next run retries.
			log.Warn("analytics refresh", "err", err)
		} else {
			log.Debug("analytics refreshed", "took", time.Since(start))
		}
		return nil
	})
}

// salesLevel is a level of the rollups: the suffix of its relations' names and the flag
// sum that counts orders there (see model.SalesFigures).
type salesLevel struct {
	suffix, orders string
}

// levelFor returns the smallest level that keeps every dimension the grouping and the filter
// use: no dimension, the totals; the category alone, or the brand alone, the level of that
// dimension; the product, or both category and brand, the product level. Its orders column
// is the counting dimension of model.SalesFigures, which the same dimensions decide: so each
// level has the flags of the queries it answers.
func levelFor(g model.SalesGroupBy, f model.SalesFilter) salesLevel {
	category := g == model.SalesGroupByCategory || len(f.CategoryIDs) > 0
	brand := g == model.SalesGroupByBrand || len(f.BrandIDs) > 0
	switch {
	case g == model.SalesGroupByProduct || len(f.ProductIDs) > 0 || (category && brand):
		return salesLevel{"", "product_orders"}
	case brand:
		return salesLevel{"_by_brand", "brand_orders"}
	case category:
		return salesLevel{"_by_category", "category_orders"}
	}
	return salesLevel{"_totals", "orders"}
}

// SalesRelations names the relations SalesReport reads to answer q, coarsest first: the
// first answers most of the range, the others the edges of its buckets (see cover). For
// tests, benchmarks and EXPLAIN.
func SalesRelations(q model.SalesQuery) ([]string, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	pieces, _ := reportPieces(reportBounds(q))
	var out []string
	for _, g := range grainsRead(pieces) {
		if g == grainRaw {
			out = append(out, "sales_facts")
		} else {
			out = append(out, grainRelation[g]+levelFor(q.GroupBy, q.Filter).suffix)
		}
	}
	return out, nil
}

// reportBounds returns the starts of a normalized query's buckets and the end of its range.
func reportBounds(q model.SalesQuery) []time.Time {
	return append(model.SalesBuckets(q.From, q.To, q.Bucket, model.MaxSalesBuckets), q.To)
}

var groupColumn = map[model.SalesGroupBy]string{
	model.SalesGroupByNone:     `''`,
	model.SalesGroupByCategory: `s.category_id::text`,
	model.SalesGroupByBrand:    `coalesce(s.brand_id::text, '')`,
	model.SalesGroupByProduct:  `s.product_id::text`,
}

// salesFilterConditions turns f into conditions on the rollup rows s.
func salesFilterConditions(a *args, f model.SalesFilter) []string {
	var conds []string
	if len(f.CategoryIDs) > 0 {
		conds = append(conds, `s.category_id IN (SELECT c.id FROM categories c WHERE c.path && `+a.add(uuidArray(f.CategoryIDs))+`::uuid[])`)
	}
	if len(f.BrandIDs) > 0 {
		conds = append(conds, `s.brand_id = ANY (`+a.add(uuidArray(f.BrandIDs))+`::uuid[])`)
	}
	if len(f.ProductIDs) > 0 {
		conds = append(conds, `s.product_id = ANY (`+a.add(uuidArray(f.ProductIDs))+`::uuid[])`)
	}
	return conds
}

// salesPiecesSQL sums the rows of a rollup that pieces name, each times its piece's weight,
// per report bucket (its index) and group. The range and the list of buckets both bound the
// scan: the range prunes chunks and partitions at planning, the list the rows read.
const salesPiecesSQL = `
SELECT p.bucket, %[1]s AS group_id, sum(p.weight * s.revenue_cents) AS revenue, sum(p.weight * s.cost_cents) AS cost,
       sum(p.weight * s.%[2]s) AS orders, sum(p.weight * s.units) AS units
FROM unnest(%[3]s::timestamptz[], %[4]s::int[], %[5]s::int[]) AS p(start, weight, bucket)
JOIN %[6]s s ON s.bucket = p.start
WHERE s.bucket = ANY (%[3]s::timestamptz[]) AND s.bucket >= %[7]s AND s.bucket <= %[8]s%[9]s
GROUP BY 1, 2`

// salesFactPiecesSQL does the same over the raw facts of the pieces' time ranges.
const salesFactPiecesSQL = `
SELECT p.bucket, %[1]s AS group_id, sum(p.weight * s.revenue_cents) AS revenue, sum(p.weight * s.cost_cents) AS cost,
       sum(p.weight * s.%[2]s) AS orders, sum(p.weight * s.units) AS units
FROM unnest(%[3]s::timestamptz[], %[4]s::timestamptz[], %[5]s::int[], %[6]s::int[]) AS p(start, stop, weight, bucket)
JOIN sales_facts s ON s.time >= p.start AND s.time < p.stop
WHERE s.time >= %[7]s AND s.time < %[8]s%[9]s
GROUP BY 1, 2`

// salesBucketsSQL adds up the pieces' sums per report bucket and group.
const salesBucketsSQL = `
SELECT r.bucket, r.group_id, sum(r.revenue)::bigint, sum(r.cost)::bigint, sum(r.orders)::bigint, sum(r.units)::bigint
FROM (%s) r
GROUP BY 1, 2`

// factFlag is the flag of the raw facts that a level's orders column sums.
var factFlag = map[string]string{
	"orders": "order_first", "category_orders": "category_first", "brand_orders": "brand_first", "product_orders": "product_first",
}

// salesRow is a report bucket's figures for a group; Bucket is the bucket's index, -1 for
// the rows that only say the group had facts in the range (see reportPieces).
type salesRow struct {
	Bucket  int
	GroupID string
	model.SalesFigures
}

func scanSalesRow(row pgx.CollectableRow) (salesRow, error) {
	var r salesRow
	var revenue, cost, orders, units int64
	err := row.Scan(&r.Bucket, &r.GroupID, &revenue, &cost, &orders, &units)
	r.Revenue, r.Cost, r.Orders, r.Units = model.Cents(revenue), model.Cents(cost), int(orders), int(units)
	return r, err
}

// SalesReport answers q (see model.SalesQuery.Normalize for what it refuses): a series per
// group that has sales facts in the range, sorted by group id, each with a point for every
// bucket (zeros where nothing sold), and totals. It reads the smallest rollups that have the
// dimensions q needs (see levelFor), as few of their rows as it can (see cover).
func (s *Store) SalesReport(ctx context.Context, q model.SalesQuery) (*model.SalesReport, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	pieces, presence := reportPieces(reportBounds(q))
	// The simple protocol plans the statement with its values: the range prunes partitions
	// or chunks at planning.
	sql, a := salesReportQuery(q, pieces)
	rows, err := s.read(ctx).Query(ctx, sql, append([]any{pgx.QueryExecModeSimpleProtocol}, a...)...)
	if err != nil {
		return nil, fmt.Errorf("sales report: %w", err)
	}
	found, err := pgx.CollectRows(rows, scanSalesRow)
	if err != nil {
		return nil, fmt.Errorf("sales report: %w", err)
	}
	return assembleReport(q, found, presence), nil
}

// salesReportQuery returns the SQL and arguments of the report rows of a normalized query's
// pieces: one scan of each grain's rollup at the query's level (or of the raw facts).
func salesReportQuery(q model.SalesQuery, pieces []piece) (string, args) {
	var a args
	level := levelFor(q.GroupBy, q.Filter)
	group := groupColumn[q.GroupBy]
	filters := andMore(salesFilterConditions(&a, q.Filter))
	var parts []string
	for g := grainDay; g <= grainRaw; g++ {
		var starts, stops []time.Time
		var weights, buckets []int32
		for _, p := range pieces {
			if p.grain == g {
				starts, stops = append(starts, p.start), append(stops, p.end)
				weights, buckets = append(weights, int32(p.weight)), append(buckets, int32(p.bucket))
			}
		}
		if len(starts) == 0 {
			continue
		}
		lo := a.add(slices.MinFunc(starts, time.Time.Compare))
		if g == grainRaw {
			parts = append(parts, fmt.Sprintf(salesFactPiecesSQL, group, factFlag[level.orders],
				a.add(starts), a.add(stops), a.add(weights), a.add(buckets), lo, a.add(slices.MaxFunc(stops, time.Time.Compare)), filters))
			continue
		}
		hi := a.add(slices.MaxFunc(starts, time.Time.Compare))
		parts = append(parts, fmt.Sprintf(salesPiecesSQL, group, level.orders,
			a.add(starts), a.add(weights), a.add(buckets), grainRelation[g]+level.suffix, lo, hi, filters))
	}
	return fmt.Sprintf(salesBucketsSQL, strings.Join(parts, "\nUNION ALL")), a
}

// andMore joins conditions to a WHERE clause that has some already.
func andMore(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " AND " + strings.Join(conds, " AND ")
}

// assembleReport lays the rows out as gap-filled series: of every group that has rows, or
// with presence, of the groups that have presence rows (bucket -1).
func assembleReport(q model.SalesQuery, rows []salesRow, presence bool) *model.SalesReport {
	loc := q.Location()
	buckets := model.SalesBuckets(q.From, q.To, q.Bucket, model.MaxSalesBuckets)
	report := &model.SalesReport{From: q.From, To: q.To, Bucket: q.Bucket, GroupBy: q.GroupBy, TimeZone: q.TimeZone}
	series := map[string]*model.SalesSeries{}
	for _, r := range rows {
		if presence != (r.Bucket < 0) || series[r.GroupID] != nil {
			continue
		}
		ser := &model.SalesSeries{GroupID: r.GroupID, Points: make([]model.SalesPoint, len(buckets))}
		for i, b := range buckets {
			ser.Points[i].BucketStart = b.In(loc)
		}
		series[r.GroupID] = ser
	}
	for _, r := range rows {
		if ser := series[r.GroupID]; ser != nil && r.Bucket >= 0 {
			ser.Points[r.Bucket].Add(r.SalesFigures)
			ser.Totals.Add(r.SalesFigures)
			report.Totals.Add(r.SalesFigures)
		}
	}
	for _, ser := range series {
		report.Series = append(report.Series, *ser)
	}
	slices.SortFunc(report.Series, func(a, b model.SalesSeries) int { return cmp.Compare(a.GroupID, b.GroupID) })
	return report
}

// topProductsSQL ranks products over [from, to): whole UTC days from the daily rollup, the
// hours before and after them from the hourly one.
const topProductsSQL = `
WITH s AS (
    SELECT product_id, revenue_cents, cost_cents, units, product_orders
    FROM sales_daily WHERE bucket >= $2 AND bucket < $3
    UNION ALL
    SELECT product_id, revenue_cents, cost_cents, units, product_orders
    FROM sales_hourly WHERE bucket >= $1 AND bucket < $2
    UNION ALL
    SELECT product_id, revenue_cents, cost_cents, units, product_orders
    FROM sales_hourly WHERE bucket >= $3 AND bucket < $4
)
SELECT product_id::text, sum(revenue_cents)::bigint AS revenue, sum(cost_cents)::bigint,
       sum(product_orders)::bigint, sum(units)::bigint AS units
FROM s
GROUP BY product_id
ORDER BY %s DESC, product_id
LIMIT $5`

// TopProducts ranks the products sold in q's range (widened to whole hours) by revenue or
// units, highest first, ties by product id; Orders is the number of orders that bought each.
func (s *Store) TopProducts(ctx context.Context, q model.TopProductsQuery) ([]model.ProductSales, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, err
	}
	dayFrom := q.From.Truncate(24 * time.Hour)
	if dayFrom.Before(q.From) {
		dayFrom = dayFrom.Add(24 * time.Hour)
	}
	dayTo := q.To.Truncate(24 * time.Hour)
	if !dayFrom.Before(dayTo) {
		dayFrom, dayTo = q.To, q.To // no whole day: hours only
	}
	metric := "revenue"
	if q.By == model.SalesMetricUnits {
		metric = "units"
	}
	rows, err := s.read(ctx).Query(ctx, fmt.Sprintf(topProductsSQL, metric), pgx.QueryExecModeSimpleProtocol,
		q.From, dayFrom, dayTo, q.To, q.First)
	if err != nil {
		return nil, fmt.Errorf("top products: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.ProductSales, error) {
		var p model.ProductSales
		var revenue, cost, orders, units int64
		err := row.Scan(&p.ProductID, &revenue, &cost, &orders, &units)
		p.Revenue, p.Cost, p.Orders, p.Units = model.Cents(revenue), model.Cents(cost), int(orders), int(units)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("top products: %w", err)
	}
	return out, nil
}
