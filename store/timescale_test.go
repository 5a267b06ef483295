package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/store"
)

// waitFor polls cond until it holds, failing t after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, limit)
		}
	}
}

// runJobsSoon makes the scheduler run the jobs of proc now, and then every second.
func runJobsSoon(t *testing.T, pool *pgxpool.Pool, proc string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `SELECT alter_job(job_id, schedule_interval => INTERVAL '1 second', next_start => now())
		FROM timescaledb_information.jobs WHERE proc_name = $1`, proc)
	if err != nil {
		t.Fatalf("schedule %s: %v", proc, err)
	}
}

// TimescaleDB's own job scheduler runs the policies: the refresh policies (in one job, in the
// order of the hierarchy) materialize every level, compression compresses the raw facts of old days, retention drops them, and the
// aggregates keep their sales.
func TestTimescalePoliciesRunByThemselves(t *testing.T) {
	t.Parallel()
	pool := dbtest.Open(t, dbtest.NewURLWith(t, dbtest.TimescaleDB), nil)
	s := store.New(pool)
	ctx := context.Background()
	// A fact an hour for 30 days, up to two hours ago.
	if _, err := pool.Exec(ctx, `INSERT INTO sales_facts (time, order_id, product_id, category_id, warehouse_id, units,
		                                revenue_cents, cost_cents, order_first)
		SELECT now() - interval '2 hours' - g * interval '1 hour', gen_random_uuid(), gen_random_uuid(), gen_random_uuid(),
		       gen_random_uuid(), 1, g, 0, 1
		FROM generate_series(0, 30 * 24 - 1) g`); err != nil {
		t.Fatal(err)
	}
	want := allTimeSums(t, pool, "sales_facts")
	relations := append(slices.Clone(analyticsRelations), quarterRelations...)

	var started time.Time
	if err := pool.QueryRow(ctx, `SELECT now()`).Scan(&started); err != nil {
		t.Fatal(err)
	}
	runJobsSoon(t, pool, "analytics_refresh_job")
	waitFor(t, 3*time.Minute, "every refresh policy run since the facts came, every aggregate materialized", func() bool {
		return mustCount(t, pool, `SELECT count(*) FROM timescaledb_information.job_stats s
			JOIN timescaledb_information.jobs j USING (job_id)
			WHERE j.proc_name = 'analytics_refresh_job' AND s.last_successful_finish > $1`, started) == 1 &&
			mustCount(t, pool, `SELECT count(*) FROM _timescaledb_catalog.continuous_agg
			WHERE _timescaledb_functions.cagg_watermark(mat_hypertable_id) < 0`) == 0 // -infinity: nothing materialized
	})
	for _, rel := range relations {
		if got := allTimeSums(t, pool, rel); got != want {
			t.Errorf("%s after the scheduler's refreshes: %v; want %v as in the raw facts", rel, got, want)
		}
	}

	runJobsSoon(t, pool, "policy_compression")
	waitFor(t, 3*time.Minute, "the chunks older than 7 days compressed", func() bool {
		return mustCount(t, pool, `SELECT count(*) FROM timescaledb_information.chunks
			WHERE hypertable_name = 'sales_facts' AND range_end < now() - interval '7 days' AND NOT is_compressed`) == 0
	})

	if err := s.ConfigureAnalytics(ctx, store.AnalyticsSettings{RetainFor: 10 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	runJobsSoon(t, pool, "policy_retention")
	// Polled in the catalog: a count of the facts themselves could deadlock with the job
	// dropping their chunks (it did, once in CI).
	waitFor(t, 3*time.Minute, "the chunks older than 10 days dropped", func() bool {
		return mustCount(t, pool, `SELECT count(*) FROM timescaledb_information.chunks
			WHERE hypertable_name = 'sales_facts' AND range_start < now() - interval '11 days'`) == 0
	})
	if old := mustCount(t, pool, `SELECT count(*) FROM sales_facts WHERE time < now() - interval '11 days'`); old != 0 {
		t.Fatalf("%d raw facts older than 11 days after retention; want none", old)
	}
	if raw := allTimeSums(t, pool, "sales_facts"); raw == want {
		t.Fatalf("raw sums %v after retention; want fewer", raw)
	}
	for _, rel := range relations {
		if got := allTimeSums(t, pool, rel); got != want {
			t.Errorf("%s after retention: %v; want %v (aggregates keep the sales of dropped facts)", rel, got, want)
		}
	}
}

// Checkouts go on while the aggregates are refreshed again and again over the hour they write
// in, by the scheduler's job and by RefreshAnalytics at once: once they stop, a refresh leaves
// every level equal to the raw facts. (Each refresh goes through the hierarchy in order, as
// the application's refreshes do: refreshing single levels of it out of that order, at the
// same time as the job, left a level short of its source's sales on TimescaleDB 2.28.3 until
// its next refresh.)
func TestCheckoutsWhileRefreshing(t *testing.T) {
	t.Parallel()
	sh := newShopIn(t, dbtest.TimescaleDB)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh.stock(sh.products[0], 100_000)
	sh.stock(sh.products[1], 100_000)
	runJobsSoon(t, sh.pool, "analytics_refresh_job")
	views := mustIDs(t, sh.pool, `SELECT name FROM analytics_caggs() ORDER BY depth, name`)
	var wg sync.WaitGroup
	refreshes := 0
	wg.Go(func() {
		for ctx.Err() == nil {
			if err := sh.s.RefreshAnalytics(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("refresh: %v", err)
				return
			}
			refreshes++
		}
	})
	for i := range 30 {
		sh.mustCheckout(sh.cart(line(sh.products[0], 1+i%3), line(sh.products[1], 1)), fmt.Sprintf("while-refreshing-%d", i))
	}
	cancel()
	wg.Wait()
	if refreshes == 0 {
		t.Fatal("no refresh ran during the checkouts")
	}
	pauseRefreshes(t, sh.pool, store.AnalyticsTimescaleDB)
	for _, v := range views {
		if _, err := sh.pool.Exec(context.Background(), `CALL refresh_continuous_aggregate($1::regclass, NULL, now() + interval '1 day')`,
			pgx.QueryExecModeSimpleProtocol, v); err != nil {
			t.Fatal(err)
		}
	}
	want := allTimeSums(t, sh.pool, "sales_facts")
	if want[2] != 30 {
		t.Fatalf("%d orders in the raw facts; want 30", want[2])
	}
	for _, rel := range append(slices.Clone(analyticsRelations), quarterRelations...) {
		if got := allTimeSums(t, sh.pool, rel); got != want {
			t.Errorf("%s: %v; want %v as in the raw facts", rel, got, want)
		}
	}
	t.Logf("%d rounds of refreshes during 30 checkouts", refreshes)
}
