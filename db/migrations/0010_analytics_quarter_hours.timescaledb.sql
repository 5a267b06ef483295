-- Replaces 0004: analytics_policies (as replaced in 0006, plus the quarter-hour levels).
-- A template: rendered with the shared templates of analytics.tmpl before it runs (db/render.go).
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

{{range $i, $l := family "15min" "sales_facts"}}{{if $i}}

{{end}}{{template "cagg" $l}}{{end}}

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
{{- template "policies_variables"}}
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
{{template "policies_again"}}
