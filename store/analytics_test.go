package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/store"
)

// salesFact is a row of sales_facts as the store tests read it.
type salesFact struct {
	Time                                         time.Time
	OrderID, ProductID, CategoryID, WarehouseID  string
	BrandID                                      string // "" when none
	Units                                        int
	Revenue, Cost                                int64
	OrderFirst, CategoryFirst, BrandFirst, First int
}

func (sh *shop) salesFacts(orderID string) []salesFact {
	sh.t.Helper()
	rows, err := sh.pool.Query(context.Background(), `
		SELECT time, order_id::text, product_id::text, category_id::text, warehouse_id::text, coalesce(brand_id::text, ''),
		       units, revenue_cents, cost_cents, order_first, category_first, brand_first, product_first
		FROM sales_facts WHERE order_id = $1 ORDER BY time, product_id, warehouse_id`, orderID)
	if err != nil {
		sh.t.Fatal(err)
	}
	defer rows.Close()
	var out []salesFact
	for rows.Next() {
		var f salesFact
		if err := rows.Scan(&f.Time, &f.OrderID, &f.ProductID, &f.CategoryID, &f.WarehouseID, &f.BrandID,
			&f.Units, &f.Revenue, &f.Cost, &f.OrderFirst, &f.CategoryFirst, &f.BrandFirst, &f.First); err != nil {
			sh.t.Fatal(err)
		}
		out = append(out, f)
	}
	if rows.Err() != nil {
		sh.t.Fatal(rows.Err())
	}
	return out
}

// flagSums adds each flag per value of its dimension: every sum must be 1 for a placed order.
func flagSums(facts []salesFact) map[string]int {
	sums := map[string]int{}
	for _, f := range facts {
		sums["order"] += f.OrderFirst
		sums["category "+f.CategoryID] += f.CategoryFirst
		sums["brand "+f.BrandID] += f.BrandFirst
		sums["product "+f.ProductID] += f.First
	}
	return sums
}

// A checkout writes a fact per line and warehouse allocation, at the order's time, with the
// unit price paid and the product's cost, and flags one fact per order, (order, category),
// (order, brand) and (order, product); a cancellation writes their negated copies at its own
// time.
func TestCheckoutAndCancellationRecordSalesFacts(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	p0, p1 := sh.products[0], sh.products[1]
	// Different categories, known costs.
	other := mustIDs(t, sh.pool, `SELECT id::text FROM categories WHERE id <> $1 ORDER BY slug LIMIT 1`, p0.CategoryID)[0]
	sh.exec(`UPDATE products SET category_id = $2, cost_cents = 700 WHERE id = $1`, p1.ID, other)
	sh.exec(`UPDATE products SET cost_cents = 1234 WHERE id = $1`, p0.ID)
	sh.stock(p0, 2, 3) // four of p0 take both warehouses
	sh.stock(p1, 5)
	o := sh.mustCheckout(sh.cart(line(p0, 4), line(p1, 1)), "facts")
	if got := sh.allocations(o); got != "p0:w0x2 p0:w1x2 p1:w0x1" {
		t.Fatalf("allocations: %s; want p0:w0x2 p0:w1x2 p1:w0x1", got)
	}

	facts := sh.salesFacts(o.ID)
	if len(facts) != 3 {
		t.Fatalf("%d facts; want 3 (one per line and warehouse): %+v", len(facts), facts)
	}
	brands := map[string]string{}
	for _, id := range []string{p0.ID, p1.ID} {
		brands[id] = mustIDs(t, sh.pool, `SELECT coalesce(brand_id::text, '') FROM products WHERE id = $1`, id)[0]
	}
	var revenue int64
	units := map[string]int{}
	for _, f := range facts {
		price, cost, category := int64(p0.Price.Amount), int64(1234), p0.CategoryID
		if f.ProductID == p1.ID {
			price, cost, category = int64(p1.Price.Amount), 700, other
		}
		if !f.Time.Equal(o.CreatedAt) || f.CategoryID != category || f.BrandID != brands[f.ProductID] ||
			f.Revenue != int64(f.Units)*price || f.Cost != int64(f.Units)*cost {
			t.Errorf("fact %+v: want time %s, category %s, brand %q, revenue %d x units, cost %d x units",
				f, o.CreatedAt, category, brands[f.ProductID], price, cost)
		}
		revenue += f.Revenue
		units[f.ProductID+"@"+f.WarehouseID] += f.Units
	}
	if revenue != int64(o.Total) || units[p0.ID+"@"+sh.warehouses[0]] != 2 || units[p0.ID+"@"+sh.warehouses[1]] != 2 || units[p1.ID+"@"+sh.warehouses[0]] != 1 {
		t.Errorf("revenue %d (order total %d), units %v; want the order's allocations", revenue, o.Total, units)
	}
	for dim, n := range flagSums(facts) {
		if n != 1 {
			t.Errorf("flags of %s add to %d; want 1", dim, n)
		}
	}

	// The report counts the order once, and once in each of its two categories.
	from, to := o.CreatedAt.Add(-time.Hour), o.CreatedAt.Add(time.Hour)
	report, err := sh.s.SalesReport(ctx, model.SalesQuery{From: from, To: to, Bucket: model.SalesBucketDay})
	if err != nil {
		t.Fatal(err)
	}
	want := model.SalesFigures{Revenue: o.Total, Cost: 4*1234 + 700, Orders: 1, Units: 5}
	if report.Totals != want {
		t.Errorf("report totals: %+v; want %+v", report.Totals, want)
	}
	if aov := report.Totals.AverageOrderValue(); aov == nil || *aov != o.Total {
		t.Errorf("average order value: %v; want %s", aov, o.Total)
	}
	byCategory, err := sh.s.SalesReport(ctx, model.SalesQuery{From: from, To: to, Bucket: model.SalesBucketDay, GroupBy: model.SalesGroupByCategory})
	if err != nil {
		t.Fatal(err)
	}
	if len(byCategory.Series) != 2 || byCategory.Series[0].Totals.Orders != 1 || byCategory.Series[1].Totals.Orders != 1 || byCategory.Totals.Orders != 2 {
		t.Errorf("by category: %+v; want two series of one order each", byCategory.Series)
	}

	// Cancelled: the negated copies, at the time of the cancellation, take it all back.
	if _, err := sh.s.CancelOrder(ctx, o.ID); err != nil {
		t.Fatal(err)
	}
	all := sh.salesFacts(o.ID)
	if len(all) != 6 {
		t.Fatalf("%d facts after the cancellation; want 6", len(all))
	}
	var cancelledAt time.Time
	if err := sh.pool.QueryRow(ctx, `SELECT cancelled_at FROM orders WHERE id = $1`, o.ID).Scan(&cancelledAt); err != nil {
		t.Fatal(err)
	}
	var net salesFact
	for i, f := range all[3:] {
		orig := facts[i]
		if !f.Time.Equal(cancelledAt) || f.ProductID != orig.ProductID || f.WarehouseID != orig.WarehouseID ||
			f.Units != -orig.Units || f.Revenue != -orig.Revenue || f.Cost != -orig.Cost ||
			f.OrderFirst != -orig.OrderFirst || f.CategoryFirst != -orig.CategoryFirst || f.BrandFirst != -orig.BrandFirst || f.First != -orig.First {
			t.Errorf("cancellation fact %+v; want the negation of %+v at %s", f, orig, cancelledAt)
		}
	}
	for _, f := range all {
		net.Units += f.Units
		net.Revenue += f.Revenue
		net.OrderFirst += f.OrderFirst
	}
	if net.Units != 0 || net.Revenue != 0 || net.OrderFirst != 0 {
		t.Errorf("net of the order's facts: %+v; want nothing", net)
	}
	report, err = sh.s.SalesReport(ctx, model.SalesQuery{From: from, To: time.Now().Add(time.Hour), Bucket: model.SalesBucketDay})
	if err != nil {
		t.Fatal(err)
	}
	if report.Totals != (model.SalesFigures{}) || report.Totals.AverageOrderValue() != nil {
		t.Errorf("totals after the cancellation: %+v; want zero and no average order value", report.Totals)
	}
}

// Expiry is a cancellation: it takes the sales back too.
func TestExpiryRecordsNegatedSalesFacts(t *testing.T) {
	sh := newShop(t, store.WithOrderHold(0))
	sh.stock(sh.products[0], 10)
	o := placedOrder(t, sh, "expiring")
	if n, err := sh.s.ExpireOrders(context.Background(), time.Now(), 10); err != nil || n != 1 {
		t.Fatalf("ExpireOrders: %d, %v; want 1", n, err)
	}
	facts := sh.salesFacts(o.ID)
	if len(facts) != 2 || facts[0].Units != 3 || facts[1].Units != -3 || facts[1].OrderFirst != -1 || !facts[1].Time.After(facts[0].Time) {
		t.Errorf("facts: %+v; want the sale and, later, its negation", facts)
	}
}

func countPartitions(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	return mustCount(t, pool, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'sales_facts'::regclass`)
}

const insertOneFactSQL = `
INSERT INTO sales_facts (time, order_id, product_id, category_id, warehouse_id, units, revenue_cents, cost_cents, order_first)
VALUES ($1, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 1, $2, 0, 1)`

func revenueOf(t *testing.T, pool *pgxpool.Pool, relation string, from, to time.Time) int64 {
	t.Helper()
	column := "bucket"
	if relation == "sales_facts" {
		column = "time"
	}
	var n int64
	err := pool.QueryRow(context.Background(), fmt.Sprintf(`SELECT coalesce(sum(revenue_cents), 0)::bigint FROM %s WHERE %s >= $1 AND %s < $2`,
		relation, column, column), from, to).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Partitions are made for the coming week, and for days asked for (today before serving, the
// days of history before loading it); a day with facts in the default partition keeps them
// there; retention drops old partitions once the rollups hold their sales, which outlive them.
func TestAnalyticsPartitions(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewURLWith(t, dbtest.Postgres), nil)
	s := store.New(pool)
	ctx := context.Background()
	if mode, err := s.AnalyticsMode(ctx); err != nil || mode != store.AnalyticsPostgres {
		t.Fatalf("mode: %q, %v; want postgres", mode, err)
	}
	before := countPartitions(t, pool) // the default partition
	created, dropped, err := s.CreateAnalyticsPartitions(ctx)
	if err != nil || created != 7 || dropped != 0 {
		t.Fatalf("first run: created %d, dropped %d, %v; want 7 (the coming days), 0", created, dropped, err)
	}
	if err := s.PrepareAnalytics(ctx); err != nil {
		t.Fatal(err)
	}
	if created, dropped, err := s.CreateAnalyticsPartitions(ctx); err != nil || created+dropped != 0 {
		t.Fatalf("second run: created %d, dropped %d, %v; want nothing", created, dropped, err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	partition := func(day time.Time) string { return "sales_facts_p" + day.Format("20060102") }
	for d := range 8 {
		if n := mustCount(t, pool, `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = 'sales_facts'::regclass AND c.relname = $1`, partition(today.AddDate(0, 0, d))); n != 1 {
			t.Errorf("partition %s missing", partition(today.AddDate(0, 0, d)))
		}
	}

	// Stray facts, a month ago and a year ahead, stay in the default partition: their days
	// get no partition, which would have to take them from under concurrent writers.
	old, future := today.AddDate(0, 0, -30).Add(5*time.Hour), today.AddDate(1, 0, 0).Add(time.Hour)
	for _, at := range []time.Time{old, future} {
		if _, err := pool.Exec(ctx, insertOneFactSQL, at, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if created, _, err := s.CreateAnalyticsPartitionsFor(ctx, old.Truncate(24*time.Hour), old.Truncate(24*time.Hour).AddDate(0, 0, 1)); err != nil || created != 0 {
		t.Fatalf("created %d, %v for a day with facts in the default partition; want none", created, err)
	}
	where := mustIDs(t, pool, `SELECT tableoid::regclass::text FROM sales_facts ORDER BY time`)
	if len(where) != 2 || where[0] != "sales_facts_default" || where[1] != "sales_facts_default" {
		t.Errorf("facts live in %v; want the default partition", where)
	}
	// Ahead of a bulk load of history: the days asked for.
	if created, _, err := s.CreateAnalyticsPartitionsFor(ctx, today.AddDate(0, 0, -60), today.AddDate(0, 0, -55)); err != nil || created != 5 {
		t.Fatalf("CreateAnalyticsPartitionsFor 5 days: created %d, %v; want 5", created, err)
	}
	loaded := today.AddDate(0, 0, -58).Add(3 * time.Hour)
	if _, err := pool.Exec(ctx, insertOneFactSQL, loaded, 500); err != nil {
		t.Fatal(err)
	}
	if got := countPartitions(t, pool); got != before+13 {
		t.Errorf("%d partitions; want %d", got, before+13)
	}

	// Retention: nothing is dropped before the rollups hold it.
	if err := s.ConfigureAnalytics(ctx, store.AnalyticsSettings{RetainFor: 10 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, dropped, err := s.CreateAnalyticsPartitions(ctx); err != nil || dropped != 0 {
		t.Fatalf("dropped %d, %v before any refresh; want 0", dropped, err)
	}
	if err := s.RefreshAnalytics(ctx); err != nil {
		t.Fatal(err)
	}
	if _, dropped, err := s.CreateAnalyticsPartitions(ctx); err != nil || dropped != 5 {
		t.Fatalf("dropped %d, %v; want the 5 partitions of two months ago", dropped, err)
	}
	day := loaded.Truncate(24 * time.Hour)
	if raw := revenueOf(t, pool, "sales_facts", day, day.Add(24*time.Hour)); raw != 0 {
		t.Errorf("raw revenue of the dropped day: %d; want 0", raw)
	}
	for _, rel := range analyticsRelations {
		if got := revenueOf(t, pool, rel, day, day.Add(24*time.Hour)); got != 500 {
			t.Errorf("%s revenue of the dropped day: %d; want 500 (rollups outlive raw facts)", rel, got)
		}
	}
	if err := s.ConfigureAnalytics(ctx, store.AnalyticsSettings{RetainFor: 24 * time.Hour}); model.ErrorCodeOf(err) != model.CodeBadUserInput {
		t.Errorf("a retention of a day: %v; want BAD_USER_INPUT", err)
	}
}

// Checkouts of a fresh database (no partition yet: its facts go to the default partition) run
// while the partition job runs again and again, and while the server readies the analytics:
// none fails, as a checkout did when the job attached today's partition under it.
func TestCheckoutsDuringPartitionCreation(t *testing.T) {
	sh := newShopIn(t, dbtest.Postgres)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh.stock(sh.products[0], 100_000)
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			if _, _, err := sh.s.CreateAnalyticsPartitions(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("CreateAnalyticsPartitions: %v", err)
			}
			// Tomorrow's again, so that every run attaches a partition.
			tomorrow := "sales_facts_p" + time.Now().UTC().AddDate(0, 0, 1).Format("20060102")
			if _, err := sh.pool.Exec(ctx, `DROP TABLE IF EXISTS `+tomorrow); err != nil && ctx.Err() == nil {
				t.Errorf("drop %s: %v", tomorrow, err)
			}
		}
	})
	placed := 0
	for i := range 40 {
		sh.mustCheckout(sh.cart(line(sh.products[0], 1)), fmt.Sprintf("during-partitions-%d", i))
		placed++
	}
	cancel()
	wg.Wait()
	if n := mustCount(t, sh.pool, `SELECT sum(order_first) FROM sales_facts`); n != placed {
		t.Errorf("%d orders in the facts; want %d", n, placed)
	}
}

// A refresh waits for the transactions that were writing facts when it raised the
// invalidation threshold, since they may have read the old one; and it blocks no writer.
func TestAnalyticsRefreshWaitsForOpenWriters(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewURLWith(t, dbtest.Postgres), func(c *pgxpool.Config) { c.MaxConns = 8 })
	s := store.New(pool)
	ctx := context.Background()
	if err := s.RefreshAnalytics(ctx); err != nil {
		t.Fatal(err)
	}
	var mark time.Time
	if err := pool.QueryRow(ctx, `SELECT watermark FROM analytics_watermark`).Scan(&mark); err != nil {
		t.Fatal(err)
	}

	// A writer of a fact in the hours the next refresh materializes, still open.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	if _, err := tx.Exec(ctx, insertOneFactSQL, mark.Add(30*time.Minute), 1000); err != nil {
		t.Fatal(err)
	}
	// The next refresh materializes two more hours.
	if _, err := pool.Exec(ctx, `UPDATE analytics_settings SET end_offset = now() - $1::timestamptz`, mark.Add(150*time.Minute)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.RefreshAnalytics(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("the refresh ended (%v) while a writer that read the old threshold was open; want it to wait", err)
	case <-time.After(500 * time.Millisecond):
	}
	// Another writer, meanwhile, is not blocked.
	start := time.Now()
	if _, err := pool.Exec(ctx, insertOneFactSQL, mark.Add(90*time.Minute), 10); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a writer waited %s during the refresh; want no wait", took)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var now time.Time
	if err := pool.QueryRow(ctx, `SELECT watermark FROM analytics_watermark`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	if !now.Equal(mark.Add(2 * time.Hour)) {
		t.Fatalf("watermark %s; want %s", now, mark.Add(2*time.Hour))
	}
	if got := revenueOf(t, pool, "sales_hourly_mat", mark, now); got != 1010 {
		t.Errorf("materialized revenue of the two hours: %d; want 1010 (both writers' facts)", got)
	}
	if got := revenueOf(t, pool, "sales_hourly", mark, now); got != 1010 {
		t.Errorf("sales_hourly revenue of the two hours: %d; want 1010", got)
	}
}

// Of several instances running the refresh job, one leads.
func TestRunAnalyticsRefreshLeadsOnce(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewURLWith(t, dbtest.Postgres), nil)
	s := store.New(pool)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { s.RunAnalyticsRefresh(ctx, 20*time.Millisecond, quiet) }) //nolint:errcheck // ends with ctx
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for mustCount(t, pool, `SELECT count(*) FROM analytics_watermark WHERE isfinite(watermark)`) == 0 ||
		countPartitions(t, pool) < 8 {
		if time.Now().After(deadline) {
			t.Fatal("no refresh and partitions after 20s; want the job to have run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Session locks of a bigint key (objsubid 1): the leaders'. (The refresh procedure's own
	// transaction lock has two int keys.)
	if n := mustCount(t, pool, `SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND d.datname = current_database()`); n != 1 {
		t.Errorf("%d advisory locks held; want 1 (one leader)", n)
	}
}

func TestConfigureAnalyticsPostgres(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewURLWith(t, dbtest.Postgres), nil)
	s := store.New(pool)
	ctx := context.Background()
	settings := func() string {
		var retain, start *string
		if err := pool.QueryRow(ctx, `SELECT retain_for::text, start_offset::text FROM analytics_settings`).Scan(&retain, &start); err != nil {
			t.Fatal(err)
		}
		deref := func(p *string) string {
			if p == nil {
				return "null"
			}
			return *p
		}
		return deref(retain) + " " + deref(start)
	}
	for _, c := range []struct {
		in   store.AnalyticsSettings
		want string
	}{
		{store.AnalyticsSettings{}, "null null"},
		{store.AnalyticsSettings{RetainFor: 90 * 24 * time.Hour, CompressAfter: time.Hour}, "90 days 90 days"},
		{store.AnalyticsSettings{RetainFor: 90 * 24 * time.Hour}, "90 days 90 days"},
		{store.AnalyticsSettings{RetainFor: 200 * time.Hour}, "200:00:00 200:00:00"},
		{store.AnalyticsSettings{CompressAfter: -1}, "null null"},
	} {
		if err := s.ConfigureAnalytics(ctx, c.in); err != nil {
			t.Fatalf("ConfigureAnalytics(%+v): %v", c.in, err)
		}
		if got := settings(); got != c.want {
			t.Errorf("after ConfigureAnalytics(%+v): retain_for, start_offset = %s; want %s", c.in, got, c.want)
		}
	}
}

func TestSalesQueriesRefuseBadInput(t *testing.T) {
	s := store.New(dbtest.New(t))
	ctx := context.Background()
	now := time.Now()
	_, err := s.SalesReport(ctx, model.SalesQuery{From: now, To: now.Add(-time.Hour), Bucket: model.SalesBucketDay})
	wantCode(t, err, model.CodeBadUserInput, "to")
	_, err = s.SalesReport(ctx, model.SalesQuery{From: now, To: now.Add(time.Hour), Bucket: model.SalesBucketDay, TimeZone: "Mars/Olympus_Mons"})
	wantCode(t, err, model.CodeBadUserInput, "timeZone")
	_, err = s.TopProducts(ctx, model.TopProductsQuery{From: now, To: now.Add(time.Hour), First: 0})
	wantCode(t, err, model.CodeBadUserInput, "first")
	r, err := s.SalesReport(ctx, model.SalesQuery{From: now, To: now.Add(time.Hour), Bucket: model.SalesBucketHour})
	if err != nil || len(r.Series) != 0 || r.Totals != (model.SalesFigures{}) {
		t.Errorf("report of no sales: %+v, %v; want no series and zero totals", r, err)
	}
}

// Buckets are the zone's: hours across a fall-back (two 01:00s), a 25-hour day, weeks from
// Monday, calendar months; worked out by hand here, before and after a refresh.
func TestSalesReportTimeZones(t *testing.T) {
	for _, mode := range []string{dbtest.TimescaleDB, dbtest.Postgres} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testSalesReportTimeZones(t, dbtest.Open(t, dbtest.NewURLWith(t, mode), nil))
		})
	}
}

func testSalesReportTimeZones(t *testing.T, pool *pgxpool.Pool) {
	s := store.New(pool)
	ctx := context.Background()
	mode, err := s.AnalyticsMode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// "Before a refresh" means before any: a refresh by TimescaleDB's scheduler between two
	// of the inserts below would hide the later facts of past hours until the next one.
	pauseRefreshes(t, pool, mode)
	for i, at := range []string{
		"2026-10-31T03:59:59Z", // 1: New York Oct 30 23:59:59 EDT
		"2026-11-01T04:00:00Z", // 2: New York Nov 1 00:00 EDT
		"2026-11-01T05:30:00Z", // 4: New York 01:30 EDT
		"2026-11-01T06:30:00Z", // 8: New York 01:30 EST
		"2026-11-02T04:59:59Z", // 16: New York Nov 1 23:59:59 EST
		"2026-11-02T05:00:00Z", // 32: New York Monday Nov 2 00:00 EST
		"2026-10-31T15:00:00Z", // 64: Tokyo Nov 1 00:00 JST
		"2026-12-10T18:29:59Z", // 128: Kolkata Dec 10 23:59:59 IST, Kathmandu Dec 11 00:14:59
		"2026-12-10T18:30:00Z", // 256: Kolkata Dec 11 00:00 IST
		"1935-01-01T00:40:27Z", // 512: Amsterdam 00:59:59 local mean time (+00:19:32)
		"1935-01-01T00:40:28Z", // 1024: Amsterdam 01:00:00
	} {
		ts, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, insertOneFactSQL, ts, 1<<i); err != nil {
			t.Fatal(err)
		}
	}
	utc := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	cases := []struct {
		q    model.SalesQuery
		want string
	}{
		{model.SalesQuery{From: utc("2026-10-31T04:00:00Z"), To: utc("2026-11-03T05:00:00Z"), Bucket: model.SalesBucketDay, TimeZone: "America/New_York"},
			"2026-10-31T00:00:00-04:00 64, 2026-11-01T00:00:00-04:00 30, 2026-11-02T00:00:00-05:00 32"},
		{model.SalesQuery{From: utc("2026-11-01T04:00:00Z"), To: utc("2026-11-01T07:00:00Z"), Bucket: model.SalesBucketHour, TimeZone: "America/New_York"},
			"2026-11-01T00:00:00-04:00 2, 2026-11-01T01:00:00-04:00 4, 2026-11-01T01:00:00-05:00 8"},
		{model.SalesQuery{From: utc("2026-10-05T00:00:00Z"), To: utc("2026-11-20T00:00:00Z"), Bucket: model.SalesBucketMonth, TimeZone: "Asia/Tokyo"},
			"2026-10-01T00:00:00+09:00 1, 2026-11-01T00:00:00+09:00 126"},
		{model.SalesQuery{From: utc("2026-10-28T00:00:00Z"), To: utc("2026-11-03T00:00:00Z"), Bucket: model.SalesBucketWeek},
			"2026-10-26T00:00:00Z 79, 2026-11-02T00:00:00Z 48"},
		// Offsets of a fraction of an hour: days split UTC hours in half, hours in quarters.
		{model.SalesQuery{From: utc("2026-12-10T00:00:00Z"), To: utc("2026-12-12T00:00:00Z"), Bucket: model.SalesBucketDay, TimeZone: "Asia/Kolkata"},
			"2026-12-10T00:00:00+05:30 128, 2026-12-11T00:00:00+05:30 256, 2026-12-12T00:00:00+05:30 0"},
		{model.SalesQuery{From: utc("2026-12-10T18:00:00Z"), To: utc("2026-12-10T19:00:00Z"), Bucket: model.SalesBucketHour, TimeZone: "Asia/Kathmandu"},
			"2026-12-10T23:00:00+05:45 0, 2026-12-11T00:00:00+05:45 384"},
		// An offset of seconds: the hours it splits come from the raw facts.
		{model.SalesQuery{From: utc("1935-01-01T00:00:00Z"), To: utc("1935-01-01T01:00:00Z"), Bucket: model.SalesBucketHour, TimeZone: "Europe/Amsterdam"},
			"1935-01-01T00:00:00+00:19 512, 1935-01-01T01:00:00+00:19 1024"},
	}
	for _, phase := range []string{"before a refresh", "after a refresh"} {
		for _, c := range cases {
			r, err := s.SalesReport(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ser := range r.Series {
				for _, p := range ser.Points {
					got = append(got, fmt.Sprintf("%s %d", p.BucketStart.Format(time.RFC3339), int64(p.Revenue)))
				}
			}
			if g := strings.Join(got, ", "); g != c.want {
				t.Errorf("%s: %s buckets in %s: got %s; want %s", phase, c.q.Bucket, c.q.TimeZone, g, c.want)
			}
		}
		if err := s.RefreshAnalytics(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// The views name a lower bound of the watermark as a literal, moved on by the refresh, so that
// the planner leaves the partitions of older facts out of the live aggregation.
func TestAnalyticsViewsPruneOldPartitions(t *testing.T) {
	pool := dbtest.Open(t, dbtest.NewURLWith(t, dbtest.Postgres), nil)
	s := store.New(pool)
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if _, _, err := s.CreateAnalyticsPartitionsFor(ctx, today.AddDate(0, 0, -30), today); err != nil {
		t.Fatal(err)
	}
	plan := func() string {
		rows, err := pool.Query(ctx, `EXPLAIN SELECT * FROM sales_daily WHERE bucket >= now() - interval '40 days'`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	old := "sales_facts_p" + today.AddDate(0, 0, -2).Format("20060102")
	if !strings.Contains(plan(), old) {
		t.Fatalf("before any refresh the plan should read every partition, %s too:\n%s", old, plan())
	}
	if err := s.RefreshAnalytics(ctx); err != nil {
		t.Fatal(err)
	}
	var watermark, liveFrom time.Time
	if err := pool.QueryRow(ctx, `SELECT watermark, live_from FROM analytics_watermark`).Scan(&watermark, &liveFrom); err != nil {
		t.Fatal(err)
	}
	if !liveFrom.Equal(watermark.Truncate(24 * time.Hour)) {
		t.Errorf("live_from %s; want the watermark's day (%s)", liveFrom, watermark)
	}
	if p := plan(); strings.Contains(p, old) {
		t.Errorf("after a refresh the plan still reads %s:\n%s", old, p)
	}
}

// A cancellation negates the sales of the order's own lines, as they were sold: when
// retention has dropped the raw facts of the sale already (a paid order cancelled weeks
// later), and when the product's cost and brand have changed since.
func TestCancellationNegatesTheOrdersLines(t *testing.T) {
	for _, mode := range []string{dbtest.TimescaleDB, dbtest.Postgres} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			sh := newShopIn(t, mode)
			ctx := context.Background()
			p0, p1 := sh.products[0], sh.products[1]
			sh.stock(p0, 2, 3)
			sh.stock(p1, 5)
			o := sh.mustCheckout(sh.cart(line(p0, 4), line(p1, 1)), "negated-later")
			sold := sh.salesFacts(o.ID)
			sh.exec(`UPDATE products SET cost_cents = cost_cents + 999, brand_id = NULL WHERE id = ANY($1::uuid[])`,
				[]string{p0.ID, p1.ID})
			// What retention does to the sale's day, once it is old enough.
			sh.exec(`DELETE FROM sales_facts WHERE order_id = $1`, o.ID)
			if _, err := sh.s.CancelOrder(ctx, o.ID); err != nil {
				t.Fatal(err)
			}
			negated := sh.salesFacts(o.ID)
			if len(negated) != len(sold) {
				t.Fatalf("%d facts after the cancellation; want %d, the negation of the sale's", len(negated), len(sold))
			}
			for i, f := range negated {
				want := sold[i]
				want.Time, want.Units, want.Revenue, want.Cost = f.Time, -want.Units, -want.Revenue, -want.Cost
				want.OrderFirst, want.CategoryFirst, want.BrandFirst, want.First = -want.OrderFirst, -want.CategoryFirst, -want.BrandFirst, -want.First
				if f != want || !f.Time.After(sold[i].Time) {
					t.Errorf("cancellation fact %+v; want %+v, later than the sale", f, want)
				}
			}
		})
	}
}
