-- Replaces 0004: analytics_refresh, analytics_views, sales_hourly, sales_daily
-- (the refresh now fills every level; the views add live aggregation to the new levels too).
-- Replaced in 0010: analytics_rollup_hours, analytics_live_views (quarter hours first).
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

CREATE TABLE sales_hourly_totals_mat (
    bucket        timestamptz NOT NULL,
    revenue_cents bigint NOT NULL,
    cost_cents    bigint NOT NULL,
    units         bigint NOT NULL,
    orders        bigint NOT NULL
);
CREATE TABLE sales_hourly_by_category_mat (
    bucket          timestamptz NOT NULL,
    category_id     uuid NOT NULL,
    revenue_cents   bigint NOT NULL,
    cost_cents      bigint NOT NULL,
    units           bigint NOT NULL,
    orders          bigint NOT NULL,
    category_orders bigint NOT NULL
);
CREATE TABLE sales_hourly_by_brand_mat (
    bucket        timestamptz NOT NULL,
    brand_id      uuid,
    revenue_cents bigint NOT NULL,
    cost_cents    bigint NOT NULL,
    units         bigint NOT NULL,
    orders        bigint NOT NULL,
    brand_orders  bigint NOT NULL
);
CREATE TABLE sales_daily_totals_mat (LIKE sales_hourly_totals_mat);
CREATE TABLE sales_daily_by_category_mat (LIKE sales_hourly_by_category_mat);
CREATE TABLE sales_daily_by_brand_mat (LIKE sales_hourly_by_brand_mat);
CREATE INDEX sales_hourly_totals_mat_bucket_idx ON sales_hourly_totals_mat (bucket);
CREATE INDEX sales_hourly_by_category_mat_bucket_idx ON sales_hourly_by_category_mat (bucket);
CREATE INDEX sales_hourly_by_brand_mat_bucket_idx ON sales_hourly_by_brand_mat (bucket);
CREATE INDEX sales_daily_totals_mat_bucket_idx ON sales_daily_totals_mat (bucket);
CREATE INDEX sales_daily_by_category_mat_bucket_idx ON sales_daily_by_category_mat (bucket);
CREATE INDEX sales_daily_by_brand_mat_bucket_idx ON sales_daily_by_brand_mat (bucket);

-- analytics_rollup_hours replaces the hourly rollups' rows of [lo, hi) (whole hours): the
-- product level from the facts, the coarser levels from it.
CREATE FUNCTION analytics_rollup_hours(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sales_hourly_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_hourly_mat
    SELECT analytics_hour(time), product_id, category_id, brand_id,
           sum(revenue_cents), sum(cost_cents), sum(units),
           sum(order_first), sum(category_first), sum(brand_first), sum(product_first)
    FROM sales_facts
    WHERE time >= lo AND time < hi
    GROUP BY 1, 2, 3, 4;

    DELETE FROM sales_hourly_totals_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_hourly_totals_mat
    SELECT bucket, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders)
    FROM sales_hourly_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY bucket;

    DELETE FROM sales_hourly_by_category_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_hourly_by_category_mat
    SELECT bucket, category_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(category_orders)
    FROM sales_hourly_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY bucket, category_id;

    DELETE FROM sales_hourly_by_brand_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_hourly_by_brand_mat
    SELECT bucket, brand_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(brand_orders)
    FROM sales_hourly_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY bucket, brand_id;
END $$;

-- analytics_rollup_days replaces the daily rollups' rows of [lo, hi) (whole days), each
-- level from the hourly level of the same dimensions.
CREATE FUNCTION analytics_rollup_days(lo timestamptz, hi timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sales_daily_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_daily_mat
    SELECT analytics_day(bucket), product_id, category_id, brand_id,
           sum(revenue_cents), sum(cost_cents), sum(units),
           sum(orders), sum(category_orders), sum(brand_orders), sum(product_orders)
    FROM sales_hourly_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY 1, 2, 3, 4;

    DELETE FROM sales_daily_totals_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_daily_totals_mat
    SELECT analytics_day(bucket), sum(revenue_cents), sum(cost_cents), sum(units), sum(orders)
    FROM sales_hourly_totals_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY 1;

    DELETE FROM sales_daily_by_category_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_daily_by_category_mat
    SELECT analytics_day(bucket), category_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(category_orders)
    FROM sales_hourly_by_category_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY 1, 2;

    DELETE FROM sales_daily_by_brand_mat WHERE bucket >= lo AND bucket < hi;
    INSERT INTO sales_daily_by_brand_mat
    SELECT analytics_day(bucket), brand_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(brand_orders)
    FROM sales_hourly_by_brand_mat WHERE bucket >= lo AND bucket < hi
    GROUP BY 1, 2;
END $$;

-- The new levels start from what the product-level rollups hold (they may hold the sales of
-- raw facts that retention dropped), under the refresh's lock so that no refresh changes those
-- meanwhile. The coarse hourly rows come from sales_hourly_mat and the daily ones from them,
-- over all materialized time: the product-level tables hold nothing at or above the watermark.
SELECT pg_advisory_xact_lock(7246, 4);
INSERT INTO sales_hourly_totals_mat
SELECT bucket, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders)
FROM sales_hourly_mat GROUP BY bucket;
INSERT INTO sales_hourly_by_category_mat
SELECT bucket, category_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(category_orders)
FROM sales_hourly_mat GROUP BY bucket, category_id;
INSERT INTO sales_hourly_by_brand_mat
SELECT bucket, brand_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(brand_orders)
FROM sales_hourly_mat GROUP BY bucket, brand_id;
-- Days from the days sales_daily_mat holds, so that they cover the same complete days.
INSERT INTO sales_daily_totals_mat
SELECT analytics_day(h.bucket), sum(revenue_cents), sum(cost_cents), sum(units), sum(orders)
FROM sales_hourly_totals_mat h
WHERE h.bucket < (SELECT analytics_day(watermark) FROM analytics_watermark)
GROUP BY 1;
INSERT INTO sales_daily_by_category_mat
SELECT analytics_day(h.bucket), category_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(category_orders)
FROM sales_hourly_by_category_mat h
WHERE h.bucket < (SELECT analytics_day(watermark) FROM analytics_watermark)
GROUP BY 1, 2;
INSERT INTO sales_daily_by_brand_mat
SELECT analytics_day(h.bucket), brand_id, sum(revenue_cents), sum(cost_cents), sum(units), sum(orders), sum(brand_orders)
FROM sales_hourly_by_brand_mat h
WHERE h.bucket < (SELECT analytics_day(watermark) FROM analytics_watermark)
GROUP BY 1, 2;

-- analytics_live_views returns the statements that (re)create the views aggregating facts
-- live, which name live_from (see 0004), in the order of their creation. The coarse hourly
-- views aggregate their live part straight from the facts: one aggregation over the hour or
-- so above the watermark, rather than two through sales_hourly.
CREATE FUNCTION analytics_live_views(live_from timestamptz) RETURNS text[]
LANGUAGE sql STABLE AS $fn$
    SELECT ARRAY[
        format($sql$
            CREATE OR REPLACE VIEW sales_hourly AS
            SELECT bucket, product_id, category_id, brand_id, revenue_cents, cost_cents, units,
                   orders, category_orders, brand_orders, product_orders
            FROM sales_hourly_mat
            WHERE bucket < (SELECT watermark FROM analytics_watermark)
            UNION ALL
            SELECT analytics_hour(time), product_id, category_id, brand_id,
                   sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
                   sum(order_first)::bigint, sum(category_first)::bigint, sum(brand_first)::bigint, sum(product_first)::bigint
            FROM sales_facts
            WHERE time >= (SELECT watermark FROM analytics_watermark) AND time >= %1$L::timestamptz
            GROUP BY 1, 2, 3, 4$sql$, live_from),
        format($sql$
            CREATE OR REPLACE VIEW sales_hourly_totals AS
            SELECT bucket, revenue_cents, cost_cents, units, orders
            FROM sales_hourly_totals_mat
            WHERE bucket < (SELECT watermark FROM analytics_watermark)
            UNION ALL
            SELECT analytics_hour(time), sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
                   sum(order_first)::bigint
            FROM sales_facts
            WHERE time >= (SELECT watermark FROM analytics_watermark) AND time >= %1$L::timestamptz
            GROUP BY 1$sql$, live_from),
        format($sql$
            CREATE OR REPLACE VIEW sales_hourly_by_category AS
            SELECT bucket, category_id, revenue_cents, cost_cents, units, orders, category_orders
            FROM sales_hourly_by_category_mat
            WHERE bucket < (SELECT watermark FROM analytics_watermark)
            UNION ALL
            SELECT analytics_hour(time), category_id, sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
                   sum(order_first)::bigint, sum(category_first)::bigint
            FROM sales_facts
            WHERE time >= (SELECT watermark FROM analytics_watermark) AND time >= %1$L::timestamptz
            GROUP BY 1, 2$sql$, live_from),
        format($sql$
            CREATE OR REPLACE VIEW sales_hourly_by_brand AS
            SELECT bucket, brand_id, revenue_cents, cost_cents, units, orders, brand_orders
            FROM sales_hourly_by_brand_mat
            WHERE bucket < (SELECT watermark FROM analytics_watermark)
            UNION ALL
            SELECT analytics_hour(time), brand_id, sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
                   sum(order_first)::bigint, sum(brand_first)::bigint
            FROM sales_facts
            WHERE time >= (SELECT watermark FROM analytics_watermark) AND time >= %1$L::timestamptz
            GROUP BY 1, 2$sql$, live_from)
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

    CREATE OR REPLACE VIEW sales_daily AS
    SELECT bucket, product_id, category_id, brand_id, revenue_cents, cost_cents, units,
           orders, category_orders, brand_orders, product_orders
    FROM sales_daily_mat
    WHERE bucket < (SELECT analytics_day(watermark) FROM analytics_watermark)
    UNION ALL
    SELECT analytics_day(bucket), product_id, category_id, brand_id,
           sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
           sum(orders)::bigint, sum(category_orders)::bigint, sum(brand_orders)::bigint, sum(product_orders)::bigint
    FROM sales_hourly
    WHERE bucket >= (SELECT analytics_day(watermark) FROM analytics_watermark)
    GROUP BY 1, 2, 3, 4;

    CREATE OR REPLACE VIEW sales_daily_totals AS
    SELECT bucket, revenue_cents, cost_cents, units, orders
    FROM sales_daily_totals_mat
    WHERE bucket < (SELECT analytics_day(watermark) FROM analytics_watermark)
    UNION ALL
    SELECT analytics_day(bucket), sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
           sum(orders)::bigint
    FROM sales_hourly_totals
    WHERE bucket >= (SELECT analytics_day(watermark) FROM analytics_watermark)
    GROUP BY 1;

    CREATE OR REPLACE VIEW sales_daily_by_category AS
    SELECT bucket, category_id, revenue_cents, cost_cents, units, orders, category_orders
    FROM sales_daily_by_category_mat
    WHERE bucket < (SELECT analytics_day(watermark) FROM analytics_watermark)
    UNION ALL
    SELECT analytics_day(bucket), category_id, sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
           sum(orders)::bigint, sum(category_orders)::bigint
    FROM sales_hourly_by_category
    WHERE bucket >= (SELECT analytics_day(watermark) FROM analytics_watermark)
    GROUP BY 1, 2;

    CREATE OR REPLACE VIEW sales_daily_by_brand AS
    SELECT bucket, brand_id, revenue_cents, cost_cents, units, orders, brand_orders
    FROM sales_daily_by_brand_mat
    WHERE bucket < (SELECT analytics_day(watermark) FROM analytics_watermark)
    UNION ALL
    SELECT analytics_day(bucket), brand_id, sum(revenue_cents)::bigint, sum(cost_cents)::bigint, sum(units)::bigint,
           sum(orders)::bigint, sum(brand_orders)::bigint
    FROM sales_hourly_by_brand
    WHERE bucket >= (SELECT analytics_day(watermark) FROM analytics_watermark)
    GROUP BY 1, 2;

    UPDATE analytics_watermark SET live_from = analytics_views.live_from;
END $fn$;
SELECT analytics_views(live_from) FROM analytics_watermark;

-- analytics_refresh as in 0004, re-aggregating the ranges into every level.
CREATE OR REPLACE PROCEDURE analytics_refresh()
LANGUAGE plpgsql AS $$
DECLARE
    cfg       analytics_settings;
    target    timestamptz;
    writers   text[];
    deadline  timestamptz;
    w_old     timestamptz;
    w_new     timestamptz;
    win_start timestamptz;
    hour_lo   timestamptz[];
    hour_hi   timestamptz[];
    day_lo    timestamptz[];
    day_hi    timestamptz[];
    stmt      text;
    busy      boolean;
BEGIN
    SELECT * INTO cfg FROM analytics_settings;
    target := analytics_hour(now() - cfg.end_offset);

    -- 1. Writers log their changes below the target from now on.
    UPDATE analytics_watermark SET threshold = greatest(threshold, target);
    COMMIT;

    -- 2. Wait for the transactions that were writing facts before that, as they may have read
    -- the old threshold: every transaction holding a write lock on sales_facts now.
    SELECT coalesce(array_agg(DISTINCT virtualtransaction), '{}') INTO writers
    FROM pg_locks
    WHERE locktype = 'relation' AND relation = 'sales_facts'::regclass AND mode = 'RowExclusiveLock'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND pid <> pg_backend_pid();
    deadline := clock_timestamp() + cfg.writer_wait;
    WHILE EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY (writers)) LOOP
        IF clock_timestamp() > deadline THEN
            RAISE EXCEPTION 'analytics refresh: a transaction writing sales_facts has been open for over %', cfg.writer_wait
                USING HINT = 'see pg_stat_activity; the next refresh tries again';
        END IF;
        PERFORM pg_sleep(0.002);
    END LOOP;
    COMMIT;

    -- 3. One transaction, whose statements all see every fact committed before it began.
    PERFORM pg_advisory_xact_lock(7246, 4);
    SELECT watermark INTO w_old FROM analytics_watermark;
    w_new := greatest(w_old, target);
    win_start := coalesce(now() - cfg.start_offset, '-infinity');

    -- The log first: what it holds now was committed with its facts, all of them visible to
    -- the aggregations below; what it gains meanwhile stays for the next refresh.
    WITH consumed AS (
        DELETE FROM sales_invalidations RETURNING lo, hi
    ), kept AS (
        INSERT INTO sales_invalidations (lo, hi)
        SELECT lo, least(hi, win_start) FROM consumed WHERE lo < win_start
    ), ranges AS (
        SELECT analytics_hour(greatest(lo, win_start)) AS a,
               least(analytics_hour(hi) + interval '1 hour', w_new) AS b
        FROM consumed WHERE hi >= win_start
        UNION ALL
        SELECT w_old, w_new
    )
    SELECT m.lo, m.hi INTO hour_lo, hour_hi
    FROM (SELECT array_agg(a) AS a, array_agg(b) AS b FROM ranges) r, analytics_merge(r.a, r.b) m;

    FOR i IN 1 .. coalesce(array_length(hour_lo, 1), 0) LOOP
        PERFORM analytics_rollup_hours(hour_lo[i], hour_hi[i]);
    END LOOP;

    -- The days those hours touch, complete below the new watermark, from the hourly rollups.
    SELECT m.lo, m.hi INTO day_lo, day_hi
    FROM (SELECT array_agg(analytics_day(u.a)) AS a,
                 array_agg(least(CASE WHEN isfinite(u.b) THEN analytics_day(u.b - interval '1 microsecond') + interval '24 hours'
                                      ELSE u.b END,
                                 analytics_day(w_new))) AS b
          FROM unnest(hour_lo, hour_hi) AS u(a, b)) r,
         analytics_merge(r.a, r.b) m;
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
