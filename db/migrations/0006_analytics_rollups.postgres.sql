-- Replaces 0004: analytics_refresh, analytics_views, sales_hourly, sales_daily
-- (the refresh now fills every level; the views add live aggregation to the new levels too).
-- Replaced in 0010: analytics_rollup_hours, analytics_live_views (quarter hours first).
-- A template: rendered with the shared templates of analytics.tmpl before it runs (db/render.go).
--
-- Coarser sales rollups on plain PostgreSQL, the counterpart of 0006_analytics_rollups.timescaledb.sql.
--
-- sales_hourly and sales_daily (0004) keep every dimension: a row per (bucket, product,
-- category, brand), nearly as many rows as there are facts. Most dashboard questions use one
-- dimension or none, so these levels keep fewer:
--
--   sales_hourly_totals       (bucket)               orders
--   sales_hourly_by_category  (bucket, category_id)  orders, category_orders
--   sales_hourly_by_brand     (bucket, brand_id)     orders, brand_orders
--   sales_daily_totals, sales_daily_by_category, sales_daily_by_brand: the same per day
--
-- plus revenue_cents, cost_cents and units. Each level has the order-count flags of the
-- dimensions it keeps, so it answers exactly the queries that use no other dimension.
--
-- As in 0004, each is a table of partial sums below the watermark (NAME_mat) and a view NAME
-- that adds live aggregation above it. The refresh re-aggregates the same ranges into every
-- level in one transaction: hourly levels from sales_hourly_mat, daily levels from the hourly
-- level of the same dimensions, as the TimescaleDB variant's hierarchy does. Deriving them from
-- rollups rather than facts keeps the levels equal whatever facts commit during the refresh,
-- and keeps them exact after retention has dropped raw facts.

{{range slice (family "hourly" "sales_facts") 1}}{{template "mat_table" .}}
{{end -}}
{{range slice dims 1}}CREATE TABLE sales_daily{{.}}_mat (LIKE sales_hourly{{.}}_mat);
{{end -}}
{{range slice (family "hourly" "sales_facts") 1}}CREATE INDEX {{.Name}}_mat_bucket_idx ON {{.Name}}_mat (bucket);
{{end -}}
{{range slice (family "daily" "sales_hourly") 1}}CREATE INDEX {{.Name}}_mat_bucket_idx ON {{.Name}}_mat (bucket);
{{end -}}

-- analytics_rollup_hours replaces the hourly rollups' rows of [lo, hi) (whole hours): the
-- product level from the facts, the coarser levels from it.
CREATE FUNCTION analytics_rollup_hours(lo timestamptz, hi timestamptz) RETURNS void
{{template "rollup_body" (family "hourly" "sales_facts")}}

-- analytics_rollup_days replaces the daily rollups' rows of [lo, hi) (whole days), each
-- level from the hourly level of the same dimensions.
CREATE FUNCTION analytics_rollup_days(lo timestamptz, hi timestamptz) RETURNS void
{{template "rollup_body" (family "daily" "sales_hourly")}}

-- The new levels start from what the product-level rollups hold (they may hold the sales of
-- raw facts that retention dropped), under the refresh's lock so that no refresh changes those
-- meanwhile. The coarse hourly rows come from sales_hourly_mat and the daily ones from them,
-- over all materialized time: the product-level tables hold nothing at or above the watermark.
-- (The rollup statements of the functions above, whose DELETEs find nothing here.)
SELECT pg_advisory_xact_lock(7246, 4);
{{- range slice (family "hourly" "sales_facts") 1}}{{template "rollup" (.Over "'-infinity'" "'infinity'")}}{{end}}
-- Days from the days sales_daily_mat holds, so that they cover the same complete days.
{{- range slice (family "daily" "sales_hourly") 1}}{{template "rollup" (.Over "'-infinity'" "(SELECT analytics_day(watermark) FROM analytics_watermark)")}}{{end}}

-- analytics_live_views returns the statements that (re)create the views aggregating facts
-- live, which name live_from (see 0004), in the order of their creation. The coarse hourly
-- views aggregate their live part straight from the facts: one aggregation over the hour or
-- so above the watermark, rather than two through sales_hourly.
CREATE FUNCTION analytics_live_views(live_from timestamptz) RETURNS text[]
LANGUAGE sql STABLE AS $fn$
    SELECT ARRAY[
{{- template "live_views" "hourly"}}
    ]
$fn$;

-- analytics_views (re)creates the views of every level, in one transaction: the live ones,
-- then the daily ones, which aggregate the hourly view of the same level as sales_daily does.
CREATE OR REPLACE FUNCTION analytics_views(live_from timestamptz) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    stmt text;
BEGIN
    FOREACH stmt IN ARRAY analytics_live_views(live_from) LOOP
        EXECUTE stmt;
    END LOOP;

{{- range family "daily" "sales_hourly"}}
{{template "view" .}};
{{end}}

    UPDATE analytics_watermark SET live_from = analytics_views.live_from;
END $fn$;
SELECT analytics_views(live_from) FROM analytics_watermark;

-- analytics_refresh as in 0004, re-aggregating the ranges into every level.
CREATE OR REPLACE PROCEDURE analytics_refresh()
LANGUAGE plpgsql AS $$
DECLARE
{{- template "refresh_variables"}}
    stmt      text;
    busy      boolean;
BEGIN
{{- template "refresh_hours"}}

    FOR i IN 1 .. coalesce(array_length(hour_lo, 1), 0) LOOP
        PERFORM analytics_rollup_hours(hour_lo[i], hour_hi[i]);
    END LOOP;
{{- template "refresh_days"}}
    FOR i IN 1 .. coalesce(array_length(day_lo, 1), 0) LOOP
        PERFORM analytics_rollup_days(day_lo[i], day_hi[i]);
    END LOOP;

    UPDATE analytics_watermark SET watermark = w_new, refreshed_at = now();
    COMMIT;

    -- 4. Once the watermark has entered a new day, tell the live views, so that they prune
    -- the partitions below it. Best effort: replacing a view waits for the queries reading it,
    -- and queues new ones meanwhile, so it gives up after a second and tries next time. One
    -- view per transaction: holding one view while waiting for another would deadlock with
    -- a query that reads both (TopProducts, or a daily view, which reads an hourly one).
    -- Each view's bound is a lower bound of the watermark whichever is replaced.
    IF (SELECT live_from FROM analytics_watermark) < analytics_day(w_new) THEN
        busy := false;
        FOREACH stmt IN ARRAY analytics_live_views(analytics_day(w_new)) LOOP
            BEGIN
                SET LOCAL lock_timeout = '1s';
                EXECUTE stmt;
            EXCEPTION WHEN lock_not_available THEN
                busy := true;
            END;
            COMMIT;
        END LOOP;
        IF busy THEN
            RAISE NOTICE 'analytics refresh: views busy, their pruning bound stays behind';
        ELSE
            UPDATE analytics_watermark SET live_from = analytics_day(w_new);
            COMMIT;
        END IF;
    END IF;
END $$;
