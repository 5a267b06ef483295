-- Replaces 0006: analytics_rollup_hours, analytics_live_views (renamed
-- analytics_hourly_live_views).
-- A template: rendered with the shared templates of analytics.tmpl before it runs (db/render.go).
--
-- Quarter-hour sales rollups on plain PostgreSQL, the counterpart of
-- 0010_analytics_quarter_hours.timescaledb.sql (see there for why), built like 0006's levels:
-- a table of partial sums below the watermark (NAME_mat) and a view NAME that adds live
-- aggregation above it. The refresh re-aggregates each range of whole hours into the quarter
-- hours of the product level from the facts, the hourly product level from those, and every
-- coarser level from the finer one of the same dimensions.

CREATE FUNCTION analytics_quarter(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN isfinite(t) THEN date_bin('15 minutes', t, TIMESTAMPTZ '2000-01-03 00:00:00+00') ELSE t END
$$;

{{range dims}}CREATE TABLE sales_15min{{.}}_mat (LIKE sales_hourly{{.}}_mat);
{{end -}}
{{range dims}}CREATE INDEX sales_15min{{.}}_mat_bucket_idx ON sales_15min{{.}}_mat (bucket);
{{end -}}

-- analytics_rollup_quarters replaces the quarter-hour rollups' rows of [lo, hi): the product
-- level from the facts, the coarser levels from it.
CREATE FUNCTION analytics_rollup_quarters(lo timestamptz, hi timestamptz) RETURNS void
{{template "rollup_body" (family "15min" "sales_facts")}}

-- analytics_rollup_hours (see 0006) now starts from the quarter hours: one pass over the facts.
CREATE OR REPLACE FUNCTION analytics_rollup_hours(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics_rollup_quarters(lo, hi);
{{- range family "hourly" "sales_15min"}}{{template "rollup" (.Over "lo" "hi")}}
{{end -}}
END $$;

-- The quarter hours of the history materialized already, as far as the raw facts reach (under
-- the refresh's lock, so that no refresh changes the watermark meanwhile).
SELECT pg_advisory_xact_lock(7246, 4);
SELECT analytics_rollup_quarters('-infinity', watermark) FROM analytics_watermark;

-- analytics_live_views (see 0006) gains the quarter-hour views, which aggregate their live part
-- straight from the facts: 0006's function keeps the hourly ones under another name.
ALTER FUNCTION analytics_live_views(timestamptz) RENAME TO analytics_hourly_live_views;
CREATE FUNCTION analytics_live_views(live_from timestamptz) RETURNS text[]
LANGUAGE sql STABLE AS $fn$
    SELECT analytics_hourly_live_views(live_from) || ARRAY[
{{- template "live_views" "15min"}}
    ]
$fn$;
SELECT analytics_views(live_from) FROM analytics_watermark;
