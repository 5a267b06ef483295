// Command analyticsbench measures the dashboard queries of the sales analytics on a database
// that `storefront seed --orders N --facts-only` filled: each query through the rollups
// (store.SalesReport, the API's path) and as a plain GROUP BY over the raw facts, side by
// side in one run, and the refresh of one new hour of facts. It prints a markdown table.
//
//	analyticsbench -db URL [-runs 30] [-raw-runs 10]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/store"
	"github.com/homegoods/storefront/tools/internal/sysload"
)

// scenario is one dashboard question, asked both ways.
type scenario struct {
	name  string
	query model.SalesQuery
	raw   string                  // the same figures by brute force; $1 and $2 are the range
	top   *model.TopProductsQuery // asked instead of query
}

func scenarios(now time.Time) []scenario {
	hour := now.Truncate(time.Hour)
	day := now.Truncate(24 * time.Hour)
	kolkata, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		panic(err)
	}
	localDay := time.Date(now.In(kolkata).Year(), now.In(kolkata).Month(), now.In(kolkata).Day(), 0, 0, 0, 0, kolkata)
	return []scenario{
		{"30-day daily series by category",
			model.SalesQuery{From: day.AddDate(0, 0, -30), To: day, Bucket: model.SalesBucketDay, GroupBy: model.SalesGroupByCategory},
			`SELECT date_trunc('day', time), category_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(category_first)
			 FROM sales_facts WHERE time >= $1 AND time < $2 GROUP BY 1, 2`, nil},
		{"24-hour hourly series",
			model.SalesQuery{From: hour.Add(-24 * time.Hour), To: hour, Bucket: model.SalesBucketHour},
			`SELECT date_trunc('hour', time), sum(revenue_cents), sum(cost_cents), sum(units), sum(order_first)
			 FROM sales_facts WHERE time >= $1 AND time < $2 GROUP BY 1`, nil},
		{"12-month monthly totals",
			model.SalesQuery{From: day.AddDate(-1, 0, 0), To: day, Bucket: model.SalesBucketMonth},
			`SELECT date_trunc('month', time), sum(revenue_cents), sum(cost_cents), sum(units), sum(order_first)
			 FROM sales_facts WHERE time >= $1 AND time < $2 GROUP BY 1`, nil},
		{name: "top 10 products of 30 days",
			top: &model.TopProductsQuery{From: day.AddDate(0, 0, -30), To: day, By: model.SalesMetricRevenue, First: 10},
			raw: `SELECT product_id, sum(revenue_cents) AS r, sum(cost_cents), sum(units), sum(product_first)
			 FROM sales_facts WHERE time >= $1 AND time < $2 GROUP BY 1 ORDER BY r DESC, product_id LIMIT 10`},
		{"30-day daily series by category, Asia/Kolkata (+05:30)",
			model.SalesQuery{From: localDay.AddDate(0, 0, -30), To: localDay, Bucket: model.SalesBucketDay,
				GroupBy: model.SalesGroupByCategory, TimeZone: "Asia/Kolkata"},
			`SELECT date_trunc('day', time, 'Asia/Kolkata'), category_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(category_first)
			 FROM sales_facts WHERE time >= $1 AND time < $2 GROUP BY 1, 2`, nil},
	}
}

func main() {
	url := flag.String("db", "", "PostgreSQL URL of the seeded database")
	runs := flag.Int("runs", 30, "measured runs of each query through the rollups")
	rawRuns := flag.Int("raw-runs", 10, "measured runs of each raw GROUP BY (at most -runs; seconds each at 10M facts)")
	flag.Parse()
	if err := run(context.Background(), *url, *runs, max(1, min(*rawRuns, *runs))); err != nil {
		fmt.Fprintln(os.Stderr, "analyticsbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url string, runs, rawRuns int) error {
	pool, err := db.Open(ctx, url, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool)
	mode, err := st.AnalyticsMode(ctx)
	if err != nil {
		return err
	}
	if mode == store.AnalyticsTimescaleDB {
		// The benchmark decides when refreshes run: the scheduler's would compete for the
		// two cores, and take in the late facts before the refresh it times.
		resume, err := pauseRefreshJob(ctx, pool)
		if err != nil {
			return err
		}
		defer resume()
	}
	var facts int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sales_facts`).Scan(&facts); err != nil {
		return err
	}
	began := time.Now()
	if err := st.RefreshAnalytics(ctx); err != nil {
		return err
	}
	fmt.Printf("### Sales analytics: %d facts, %s mode\n\nCatch-up refresh before measuring: %s. Load average: %s.\n\n",
		facts, mode, time.Since(began).Round(time.Millisecond), sysload.Average())
	fmt.Println("| query | rollup read | rollups p50 | rollups p95 | raw GROUP BY p50 | raw GROUP BY p95 | p95 ratio |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|")
	for _, s := range scenarios(time.Now().UTC()) {
		if err := measure(ctx, st, pool, s, runs, rawRuns); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if err := refreshHour(ctx, st, pool, runs); err != nil {
		return err
	}
	if err := ingest(ctx, st, pool); err != nil {
		return err
	}
	if err := compression(ctx, pool, mode); err != nil {
		return err
	}
	fmt.Printf("\nLoad average at the end: %s.\n", sysload.Average())
	return nil
}

const scheduleRefreshJobSQL = `SELECT alter_job(job_id, scheduled => $1) FROM timescaledb_information.jobs
WHERE proc_name = 'analytics_refresh_job'`

// pauseRefreshJob unschedules TimescaleDB's analytics refresh job until resume runs.
func pauseRefreshJob(ctx context.Context, pool *pgxpool.Pool) (resume func(), err error) {
	if _, err := pool.Exec(ctx, scheduleRefreshJobSQL, false); err != nil {
		return nil, fmt.Errorf("pause the refresh job: %w", err)
	}
	return func() {
		if _, err := pool.Exec(context.Background(), scheduleRefreshJobSQL, true); err != nil {
			fmt.Fprintln(os.Stderr, "analyticsbench: resume the refresh job:", err)
		}
	}, nil
}

// ingest writes order-sized batches of facts (two lines each, as checkout does in the
// order's transaction) from 8 writers for 10 s while refreshes run back to back, and
// reports the facts written per second and the latency of one order's insert. The facts
// are written at now(), as checkout writes them, and deleted afterwards.
func ingest(ctx context.Context, st *store.Store, pool *pgxpool.Pool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if _, err := pool.Exec(ctx, ingestSQL); err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				mu.Lock()
				took = append(took, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	refreshes := 0
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := st.RefreshAnalytics(ctx); err != nil && ctx.Err() == nil {
				errs <- err
				return
			}
			refreshes++
		}
	})
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if _, err := pool.Exec(context.Background(), `DELETE FROM sales_facts WHERE order_id IN (SELECT order_id FROM sales_facts
		WHERE time > now() - interval '1 minute' AND warehouse_id = '00000000-0000-4000-8000-0000000000bb')`); err != nil {
		return err
	}
	fmt.Printf("\nFact ingest, order-sized inserts of 2 facts from 8 writers for 10 s during %d back-to-back refreshes: "+
		"%.0f facts/s, insert p50 %s, p99 %s.\n", refreshes, float64(2*len(took))/10, ms(pct(took, 50)), ms(pct(took, 99)))
	return nil
}

// ingestSQL writes one order's two facts at now(), of two products of the catalog.
const ingestSQL = `
INSERT INTO sales_facts (time, order_id, product_id, category_id, brand_id, warehouse_id, units, revenue_cents, cost_cents,
                         order_first, category_first, brand_first, product_first)
SELECT now(), o.id, p.id, p.category_id, p.brand_id, '00000000-0000-4000-8000-0000000000bb', 1, p.price_cents, p.cost_cents,
       (row_number() OVER () = 1)::int, 1, 1, 1
FROM (SELECT gen_random_uuid() AS id) o,
     LATERAL (SELECT * FROM products WHERE id >= gen_random_uuid() ORDER BY id LIMIT 2) p`

// compression runs TimescaleDB's compression policy (raw facts older than 7 days) to its end
// and reports the size of the raw facts before and after.
func compression(ctx context.Context, pool *pgxpool.Pool, mode string) error {
	if mode != store.AnalyticsTimescaleDB {
		var size int64
		if err := pool.QueryRow(ctx, `SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'sales_facts'::regclass`).Scan(&size); err != nil {
			return err
		}
		fmt.Printf("\nRaw facts: %.0f MiB with their indexes (no compression in plain mode).\n", float64(size)/(1<<20))
		return nil
	}
	var job int
	if err := pool.QueryRow(ctx, `SELECT job_id FROM timescaledb_information.jobs
		WHERE proc_name = 'policy_compression' AND hypertable_name = 'sales_facts'`).Scan(&job); err != nil {
		return fmt.Errorf("compression job: %w", err)
	}
	t0 := time.Now()
	if _, err := pool.Exec(ctx, `CALL run_job($1)`, pgx.QueryExecModeSimpleProtocol, job); err != nil {
		return fmt.Errorf("compression: %w", err)
	}
	var before, after *int64
	if err := pool.QueryRow(ctx, `SELECT sum(before_compression_total_bytes)::bigint, sum(after_compression_total_bytes)::bigint
		FROM hypertable_compression_stats('sales_facts')`).Scan(&before, &after); err != nil {
		return err
	}
	if before == nil || after == nil || *after == 0 {
		return fmt.Errorf("compression: no compressed chunks")
	}
	fmt.Printf("\nCompression of the raw facts older than 7 days (the policy's job, %s): %.0f MiB to %.0f MiB with indexes, %.1fx.\n",
		time.Since(t0).Round(time.Second), float64(*before)/(1<<20), float64(*after)/(1<<20), float64(*before)/float64(*after))
	return nil
}

// measure times the scenario's two paths alternately, so that both see the same machine:
// runs times through the rollups, and rawRuns times the raw GROUP BY, spread among them.
func measure(ctx context.Context, st *store.Store, pool *pgxpool.Pool, s scenario, runs, rawRuns int) error {
	relation, from, to := "sales_daily + sales_hourly", s.query.From, s.query.To
	if s.top != nil {
		from, to = s.top.From, s.top.To
	} else {
		relations, err := store.SalesRelations(s.query)
		if err != nil {
			return err
		}
		relation = strings.Join(relations, " + ")
	}
	var agg, raw []time.Duration
	for i := -2; i < runs; i++ { // two unmeasured rounds warm the caches of both paths
		t0 := time.Now()
		var err error
		if s.top != nil {
			_, err = st.TopProducts(ctx, *s.top)
		} else {
			_, err = st.SalesReport(ctx, s.query)
		}
		if err != nil {
			return err
		}
		t1 := time.Now()
		if i >= 0 {
			agg = append(agg, t1.Sub(t0))
		}
		if i >= 0 && i%(runs/rawRuns) != 0 || len(raw) == rawRuns {
			continue
		}
		rows, err := pool.Query(ctx, s.raw, from, to)
		if err != nil {
			return err
		}
		for rows.Next() {
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if i >= 0 {
			raw = append(raw, time.Since(t1))
		}
	}
	fmt.Printf("| %s | %s | %s | %s | %s | %s | %.0fx |\n", s.name, relation, ms(pct(agg, 50)), ms(pct(agg, 95)),
		ms(pct(raw, 50)), ms(pct(raw, 95)), float64(pct(raw, 95))/float64(pct(agg, 95)))
	return nil
}

// refreshHour inserts an hour of facts at the average rate of the history, just after the
// materialized part, and times the refresh that takes them in, runs times.
func refreshHour(ctx context.Context, st *store.Store, pool *pgxpool.Pool, runs int) error {
	var perHour int64
	if err := pool.QueryRow(ctx, `SELECT greatest(count(*) / 8760, 1) FROM sales_facts`).Scan(&perHour); err != nil {
		return err
	}
	var took []time.Duration
	for range min(runs, 5) {
		// The history ends now: an hour two hours back is below the refresh window's end.
		if _, err := pool.Exec(ctx, insertHourSQL, perHour); err != nil {
			return fmt.Errorf("insert an hour of facts: %w", err)
		}
		t0 := time.Now()
		if err := st.RefreshAnalytics(ctx); err != nil {
			return err
		}
		took = append(took, time.Since(t0))
	}
	fmt.Printf("\nRefresh after %d new facts in an hour (late facts, %d runs): p50 %s, max %s.\n", perHour, len(took), ms(pct(took, 50)), ms(slices.Max(took)))
	return nil
}

// insertHourSQL copies a random sample of facts into the hour two hours ago, as late facts.
const insertHourSQL = `
INSERT INTO sales_facts (time, order_id, product_id, category_id, brand_id, warehouse_id, units, revenue_cents, cost_cents,
                         order_first, category_first, brand_first, product_first)
SELECT date_trunc('hour', now()) - interval '2 hours' + random() * interval '1 hour', gen_random_uuid(), product_id,
       category_id, brand_id, warehouse_id, units, revenue_cents, cost_cents, 1, 1, 1, 1
FROM sales_facts TABLESAMPLE SYSTEM (1) LIMIT $1`

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
