-- Replaces 0006: analytics_rollup_hours, analytics_live_views (renamed
-- analytics_hourly_live_views).
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

CREATE TABLE sales_15min_mat (LIKE sales_hourly_mat);
CREATE TABLE sales_15min_totals_mat (LIKE sales_hourly_totals_mat);
CREATE TABLE sales_15min_by_category_mat (LIKE sales_hourly_by_category_mat);
CREATE TABLE sales_15min_by_brand_mat (LIKE sales_hourly_by_brand_mat);
CREATE INDEX sales_15min_mat_bucket_idx ON sales_15min_mat (bucket);
CREATE INDEX sales_15min_totals_mat_bucket_idx ON sales_15min_totals_mat (bucket);
CREATE INDEX sales_15min_by_category_mat_bucket_idx ON sales_15min_by_category_mat (bucket);
CREATE INDEX sales_15min_by_brand_mat_bucket_idx ON sales_15min_by_brand_mat (bucket);

-- analytics_rollup_quarters replaces the quarter-hour rollups' rows of [lo, hi): the product
-- level from the facts, the coarser levels from it.
CREATE FUNCTION analytics_rollup_quarters(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sales_15min_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_15min_mat
    SELECT analytics_quarter(time), product_id, category_id, brand_id,
           sum(revenue_cents), sum(cost_cents), sum(units),
           sum(order_first), sum(category_first), sum(brand_first), sum(product_first)
    FROM sales_facts
    WHERE time >= lo AND time < hi
    GROUP BY 1, 2, 3, 4;

    DELETE FROM sales_15min_totals_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_15min_totals_mat
    SELECT bucket, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders)
    FROM sales_15min_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY bucket;

    DELETE FROM sales_15min_by_category_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_15min_by_category_mat
    SELECT bucket, category_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(category_orders)
    FROM sales_15min_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY bucket, category_id;

    DELETE FROM sales_15min_by_brand_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_15min_by_brand_mat
    SELECT bucket, brand_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(brand_orders)
    FROM sales_15min_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY bucket, brand_id;
END $$;

-- analytics_rollup_hours (see 0006) now starts from the quarter hours: one pass over the facts.
CREATE OR REPLACE FUNCTION analytics_rollup_hours(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM analytics_rollup_quarters(lo, hi);

    DELETE FROM sales_hourly_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_hourly_mat
    SELECT analytics_hour(bucket), product_id, category_id, brand_id,
           sum(revenue_cents), sum(cost_cents), sum(units),
           sum(orders), sum(category_orders), sum(brand_orders), sum(product_orders)
    FROM sales_15min_mat
    WHERE bucket >= lo AND bucket < hi
    GROUP BY 1, 2, 3, 4;

    DELETE FROM sales_hourly_totals_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_hourly_totals_mat
    SELECT analytics_hour(bucket), sum(revenue_cents), sum(cost_cents), sum(units), sum(orders)
    FROM sales_15min_totals_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY 1;

    DELETE FROM sales_hourly_by_category_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_hourly_by_category_mat
    SELECT analytics_hour(bucket), category_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(category_orders)
    FROM sales_15min_by_category_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY 1, 2;

    DELETE FROM sales_hourly_by_brand_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_hourly_by_brand_mat
    SELECT analytics_hour(bucket), brand_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(brand_orders)
    FROM sales_15min_by_brand_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY 1, 2;
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
        format($sql$
            CREATE OR REPLACE VIEW sales_15min AS
            SELECT bucket, product_id, category_id, brand_id, revenue_cents, cost_cents, units,
                   orders, category_orders, brand_orders, product_orders
            FROM sales_15min_mat
            WHERE bucket < (SELECT watermark FROM analytics_watermark)
            UNION ALL
            SELECT analytics_quarter(time), product_id, category_id, brand_id,
                   sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
                   sum(order_first)::bigint, sum(category_first)::bigint, sum(brand_first)::bigint, sum(product_first)::bigint
            FROM sales_facts
            WHERE time >= (SELECT watermark FROM analytics_watermark) AND time >= %1$L::timestamptz
            GROUP BY 1, 2, 3, 4$sql$, live_from),
        format($sql$
            CREATE OR REPLACE VIEW sales_15min_totals AS
            SELECT bucket, revenue_cents, cost_cents, units, orders
            FROM sales_15min_totals_mat
            WHERE bucket < (SELECT watermark FROM analytics_watermark)
            UNION ALL
            SELECT analytics_quarter(time), sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
                   sum(order_first)::bigint
            FROM sales_facts
            WHERE time >= (SELECT watermark FROM analytics_watermark) AND time >= %1$L::timestamptz
            GROUP BY 1$sql$, live_from),
        format($sql$
            CREATE OR REPLACE VIEW sales_15min_by_category AS
            SELECT bucket, category_id, revenue_cents, cost_cents, units, orders, category_orders
            FROM sales_15min_by_category_mat
            WHERE bucket < (SELECT watermark FROM analytics_watermark)
            UNION ALL
            SELECT analytics_quarter(time), category_id, sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
                   sum(order_first)::bigint, sum(category_first)::bigint
            FROM sales_facts
            WHERE time >= (SELECT watermark FROM analytics_watermark) AND time >= %1$L::timestamptz
            GROUP BY 1, 2$sql$, live_from),
        format($sql$
            CREATE OR REPLACE VIEW sales_15min_by_brand AS
            SELECT bucket, brand_id, revenue_cents, cost_cents, units, orders, brand_orders
            FROM sales_15min_by_brand_mat
            WHERE bucket < (SELECT watermark FROM analytics_watermark)
            UNION ALL
            SELECT analytics_quarter(time), brand_id, sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
                   sum(order_first)::bigint, sum(brand_first)::bigint
            FROM sales_facts
            WHERE time >= (SELECT watermark FROM analytics_watermark) AND time >= %1$L::timestamptz
            GROUP BY 1, 2$sql$, live_from)
    ]
$fn$;
SELECT analytics_views(live_from) FROM analytics_watermark;
