-- Replaces 0004: analytics_policies (as replaced in 0006, plus the quarter-hour levels).
--
-- Quarter-hour sales rollups on TimescaleDB; 0010_analytics_quarter_hours.postgres.sql builds
-- the same relations and columns on plain PostgreSQL.
--
-- Zones whose offset from UTC is not whole hours (Asia/Kolkata +05:30, Asia/Kathmandu +05:45,
-- Australia/Adelaide +09:30) have hours and days that start inside UTC hours, which hourly
-- rollups cannot split. Every offset in use today is a multiple of 15 minutes, so
-- quarter-hour partial sums split them exactly: a report reads the hours a bucket boundary
-- splits from these, every other hour from the hourly rollups (see store.SalesReport).
--
--   sales_15min              (bucket, product_id, category_id, brand_id): on the raw facts
--   sales_15min_totals       (bucket)               orders
--   sales_15min_by_category  (bucket, category_id)  orders, category_orders
--   sales_15min_by_brand     (bucket, brand_id)     orders, brand_orders
--
-- The coarser levels are built on sales_15min, as the hourly ones are on sales_hourly. A new
-- level over existing history materializes all of it at its first refresh, as far as the raw
-- facts reach (retention may have dropped older ones: their quarter hours are not known).

CREATE MATERIALIZED VIEW sales_15min
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '15 minutes', time) AS bucket, product_id, category_id, brand_id,
       sum(revenue_cents)::bigint AS revenue_cents,
       sum(cost_cents)::bigint AS cost_cents,
       sum(units)::bigint AS units,
       sum(order_first)::bigint AS orders,
       sum(category_first)::bigint AS category_orders,
       sum(brand_first)::bigint AS brand_orders,
       sum(product_first)::bigint AS product_orders
FROM sales_facts
GROUP BY bucket, product_id, category_id, brand_id
WITH NO DATA;

CREATE MATERIALIZED VIEW sales_15min_totals
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '15 minutes', bucket) AS bucket,
       sum(revenue_cents)::bigint AS revenue_cents,
       sum(cost_cents)::bigint AS cost_cents,
       sum(units)::bigint AS units,
       sum(orders)::bigint AS orders
FROM sales_15min
GROUP BY 1
WITH NO DATA;

CREATE MATERIALIZED VIEW sales_15min_by_category
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '15 minutes', bucket) AS bucket, category_id,
       sum(revenue_cents)::bigint AS revenue_cents,
       sum(cost_cents)::bigint AS cost_cents,
       sum(units)::bigint AS units,
       sum(orders)::bigint AS orders,
       sum(category_orders)::bigint AS category_orders
FROM sales_15min
GROUP BY 1, category_id
WITH NO DATA;

CREATE MATERIALIZED VIEW sales_15min_by_brand
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '15 minutes', bucket) AS bucket, brand_id,
       sum(revenue_cents)::bigint AS revenue_cents,
       sum(cost_cents)::bigint AS cost_cents,
       sum(units)::bigint AS units,
       sum(orders)::bigint AS orders,
       sum(brand_orders)::bigint AS brand_orders
FROM sales_15min
GROUP BY 1, brand_id
WITH NO DATA;

-- The refresh policies run in one job of TimescaleDB's scheduler, analytics_refresh_job, in
-- the order of the hierarchy (analytics_refresh), rather than each on its own schedule: run by
-- the scheduler at the same moment, a level's refresh and its source's raced, and the level
-- was left without sales its source had (measured on TimescaleDB 2.28.3: a daily level
-- holding 165 of 720 facts' sales until those days changed again).
CREATE PROCEDURE analytics_refresh_job(job_id integer, config jsonb)
LANGUAGE plpgsql AS $$
BEGIN
    CALL analytics_refresh();
END $$;

-- analytics_policies (re)creates the refresh policies (see 0006), unscheduled (the job above
-- runs them), and the job: the aggregates on the raw facts (depth 0: sales_hourly and
-- sales_15min) take start_offset, the retention, so that the sums of dropped facts survive;
-- the others read aggregates and may re-aggregate any range.
CREATE OR REPLACE FUNCTION analytics_policies(start_offset interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    batched boolean := EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'add_continuous_aggregate_policy'
                                 AND 'buckets_per_batch' = ANY (proargnames));
    add text := 'SELECT add_continuous_aggregate_policy($1, start_offset => $2, end_offset => $3, schedule_interval => $4'
                || CASE WHEN batched THEN ', buckets_per_batch => $5)' ELSE ') WHERE $5 IS NOT NULL' END;
    agg record;
    daily boolean;
    quarter boolean;
BEGIN
    FOR agg IN SELECT a.view, a.name, a.depth FROM analytics_caggs() a LOOP
        daily := agg.name LIKE 'sales\_daily%';
        quarter := agg.name LIKE 'sales\_15min%';
        PERFORM remove_continuous_aggregate_policy(agg.view, if_exists => true);
        EXECUTE add USING agg.view,
            CASE WHEN agg.depth = 0 THEN start_offset END,
            CASE WHEN daily THEN INTERVAL '1 day' ELSE INTERVAL '1 hour' END,
            CASE WHEN daily THEN INTERVAL '30 minutes' ELSE INTERVAL '5 minutes' END,
            CASE WHEN daily THEN 31 WHEN quarter THEN 4 * 7 * 24 ELSE 7 * 24 END;
    END LOOP;
    PERFORM alter_job(j.job_id, scheduled => false)
    FROM timescaledb_information.jobs j WHERE j.proc_name = 'policy_refresh_continuous_aggregate';
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs WHERE proc_name = 'analytics_refresh_job') THEN
        PERFORM add_job('analytics_refresh_job', INTERVAL '5 minutes');
    END IF;
END $$;
SELECT analytics_policies((SELECT (j.config ->> 'start_offset')::interval
                           FROM _timescaledb_config.bgw_job j
                           JOIN _timescaledb_catalog.continuous_agg c
                             ON c.mat_hypertable_id = (j.config ->> 'mat_hypertable_id')::integer
                           WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
                             AND c.user_view_schema = current_schema() AND c.user_view_name = 'sales_hourly'));
