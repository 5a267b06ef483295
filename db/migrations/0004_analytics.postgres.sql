-- Replaced in 0006: analytics_refresh, analytics_views, sales_hourly, sales_daily.
-- Replaced in 0009: analytics_create_partitions (it no longer moves rows under live inserts).
-- The definitions below are those of databases migrated to 0005 only; read the later ones
-- for what runs.
-- A template: rendered with the shared templates of analytics.tmpl before it runs (db/render.go).
--
-- Sales analytics on plain PostgreSQL (the server offers no TimescaleDB): the same relations,
-- columns and semantics as 0004_analytics.timescaledb.sql, built by hand.
--
--   sales_facts        the order lines, a fact per (line, warehouse allocation), append-only;
--                      range-partitioned by UTC day, a default partition catching the rest
--   sales_hourly_mat   hourly partial sums by (product, category, brand), below the watermark
--   sales_daily_mat    daily partial sums, built from the hourly ones
--   sales_hourly       view: sales_hourly_mat below the watermark UNION ALL a live aggregation
--   sales_daily        of the facts (of sales_hourly) at or above it, as TimescaleDB's
--                      real-time continuous aggregates do
--   analytics_watermark     the watermark, and the invalidation threshold
--   sales_invalidations     time ranges of facts changed below the threshold, to re-aggregate
--   analytics_refresh()     the refresh job (a procedure: CALL it outside a transaction)
--
-- Why a threshold besides the watermark: a refresh aggregates the facts its snapshot sees. A
-- fact committed after that snapshot in a range being materialized would be lost, unless the
-- writer logged it. So a refresh first raises the threshold to its target watermark and
-- commits; then waits for the transactions that were writing facts at that moment (they may
-- have read the old threshold); only then takes the snapshot it aggregates. Every writer not
-- in that snapshot read the new threshold, so its facts below the target are in the log, which
-- the refresh consumes only as far as its own snapshot sees it. Nothing waits on the refresh:
-- writers never block.

CREATE TABLE sales_facts (
{{- template "sales_facts_columns"}}
) PARTITION BY RANGE (time);
CREATE INDEX sales_facts_time_idx ON sales_facts (time);
CREATE INDEX sales_facts_order_idx ON sales_facts (order_id);
-- Rows of days without a partition land here, so that an insert never fails;
-- analytics_create_partitions() moves them to partitions of their own.
CREATE TABLE sales_facts_default PARTITION OF sales_facts DEFAULT;

-- Bucket boundaries, absolute (UTC) like TimescaleDB's time_bucket: infinities pass through.
CREATE FUNCTION analytics_hour(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN isfinite(t) THEN date_bin('1 hour', t, TIMESTAMPTZ '2000-01-03 00:00:00+00') ELSE t END
$$;
CREATE FUNCTION analytics_day(t timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN isfinite(t) THEN date_bin('1 day', t, TIMESTAMPTZ '2000-01-03 00:00:00+00') ELSE t END
$$;

CREATE TABLE analytics_settings (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- The refresh materializes complete hours up to now() - end_offset; facts later than that
    -- are aggregated live by the views.
    end_offset       interval NOT NULL DEFAULT '1 hour',
    -- Late facts older than now() - start_offset are not re-aggregated (their invalidations
    -- wait in the log); NULL: any age is. Set to retain_for, so that aggregates of facts
    -- dropped by retention survive.
    start_offset     interval,
    retain_for       interval,          -- NULL: raw facts are kept forever
    partitions_ahead integer NOT NULL DEFAULT 7 CHECK (partitions_ahead >= 0),
    -- How long a refresh waits for the fact writers of step 2 before it gives up.
    writer_wait      interval NOT NULL DEFAULT '1 minute'
);
INSERT INTO analytics_settings DEFAULT VALUES;

CREATE TABLE analytics_watermark (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- Writers log changed facts older than the threshold; threshold >= watermark.
    threshold    timestamptz NOT NULL DEFAULT '-infinity',
    -- Hours below it are read from sales_hourly_mat, days below its day from sales_daily_mat.
    watermark    timestamptz NOT NULL DEFAULT '-infinity',
    -- What the views know of the watermark at planning time (see analytics_views): <= it.
    live_from    timestamptz NOT NULL DEFAULT '-infinity',
    refreshed_at timestamptz
);
INSERT INTO analytics_watermark DEFAULT VALUES;

CREATE TABLE sales_invalidations (
    lo timestamptz NOT NULL,
    hi timestamptz NOT NULL   -- the range [lo, hi] of the changed facts' times
);

{{template "mat_table" (level "sales_hourly" "sales_facts")}}
CREATE INDEX sales_hourly_mat_bucket_idx ON sales_hourly_mat (bucket);
CREATE TABLE sales_daily_mat (LIKE sales_hourly_mat);
CREATE INDEX sales_daily_mat_bucket_idx ON sales_daily_mat (bucket);

-- analytics_views (re)creates the views. live_from is a lower bound of the watermark written
-- as a literal, so that the planner prunes the partitions of older facts (with the watermark
-- alone, read by a subquery, it could prune them only at run time, after planning them all:
-- over a hundred milliseconds with a year of partitions). The refresh moves it up to the
-- watermark's day once a day.
CREATE FUNCTION analytics_views(live_from timestamptz) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format($sql$
{{template "view" (level "sales_hourly" "sales_facts")}}$sql$, live_from);
{{template "view" (level "sales_daily" "sales_hourly")}};
    UPDATE analytics_watermark SET live_from = analytics_views.live_from;
END $fn$;
SELECT analytics_views('-infinity');

-- The invalidation log is fed by statement-level triggers: one row per statement, with the
-- time range of its changed facts below the threshold. A writer in REPEATABLE READ or
-- SERIALIZABLE may hold a snapshot older than a refresh's threshold, so it logs every change:
-- too wide a range only costs a little re-aggregation.
CREATE FUNCTION sales_threshold() RETURNS timestamptz
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN 'infinity';
    END IF;
    RETURN (SELECT threshold FROM analytics_watermark);
END $$;

CREATE FUNCTION sales_facts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    below timestamptz := sales_threshold();
BEGIN
    INSERT INTO sales_invalidations (lo, hi)
    SELECT min(time), max(time) FROM new_rows WHERE time < below HAVING count(*) > 0;
    RETURN NULL;
END $$;
CREATE FUNCTION sales_facts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    below timestamptz := sales_threshold();
BEGIN
    INSERT INTO sales_invalidations (lo, hi)
    SELECT min(time), max(time) FROM old_rows WHERE time < below HAVING count(*) > 0;
    RETURN NULL;
END $$;
CREATE FUNCTION sales_facts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    below timestamptz := sales_threshold();
BEGIN
    INSERT INTO sales_invalidations (lo, hi)
    SELECT min(time), max(time)
    FROM (SELECT time FROM old_rows UNION ALL SELECT time FROM new_rows) changed
    WHERE time < below HAVING count(*) > 0;
    RETURN NULL;
END $$;
CREATE FUNCTION sales_facts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sales_invalidations (lo, hi) SELECT '-infinity', threshold FROM analytics_watermark;
    RETURN NULL;
END $$;
CREATE TRIGGER sales_facts_inserted AFTER INSERT ON sales_facts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sales_facts_inserted();
CREATE TRIGGER sales_facts_deleted AFTER DELETE ON sales_facts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sales_facts_deleted();
CREATE TRIGGER sales_facts_updated AFTER UPDATE ON sales_facts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sales_facts_updated();
CREATE TRIGGER sales_facts_truncated AFTER TRUNCATE ON sales_facts
    FOR EACH STATEMENT EXECUTE FUNCTION sales_facts_truncated();

-- analytics_merge merges half-open ranges [a[i], b[i]) into disjoint, ordered ones.
CREATE FUNCTION analytics_merge(a timestamptz[], b timestamptz[], OUT lo timestamptz[], OUT hi timestamptz[])
LANGUAGE sql IMMUTABLE AS $$
    WITH r AS (
        SELECT u.a, u.b FROM unnest($1, $2) AS u(a, b) WHERE u.a < u.b
    ), reach AS (
        SELECT r.a, r.b, max(r.b) OVER (ORDER BY r.a, r.b ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM r
    ), islands AS (
        SELECT reach.a, reach.b,
               count(*) FILTER (WHERE reach.before IS NULL OR reach.a > reach.before) OVER (ORDER BY reach.a, reach.b) AS island
        FROM reach
    ), merged AS (
        SELECT min(islands.a) AS a, max(islands.b) AS b FROM islands GROUP BY island
    )
    SELECT coalesce(array_agg(merged.a ORDER BY merged.a), '{}'), coalesce(array_agg(merged.b ORDER BY merged.a), '{}')
    FROM merged
$$;

-- analytics_refresh is the refresh job, the counterpart of a continuous aggregate policy:
-- it materializes the complete hours up to now() - end_offset, advances the watermark and
-- re-aggregates the ranges the invalidation log names (those newer than now() - start_offset),
-- in one transaction (step 3) after the two short steps that make it safe against concurrent
-- writers (see the top of this file). Refreshes may run concurrently: step 3 serialises them.
CREATE PROCEDURE analytics_refresh()
LANGUAGE plpgsql AS $$
DECLARE
{{- template "refresh_variables"}}
BEGIN
{{- template "refresh_hours"}}

    FOR i IN 1 .. coalesce(array_length(hour_lo, 1), 0) LOOP
{{- template "rollup" ((level "sales_hourly" "sales_facts").Over "hour_lo[i]" "hour_hi[i]")}}
    END LOOP;
{{- template "refresh_days"}}
    FOR i IN 1 .. coalesce(array_length(day_lo, 1), 0) LOOP
{{- template "rollup" ((level "sales_daily" "sales_hourly").Over "day_lo[i]" "day_hi[i]")}}
    END LOOP;

    UPDATE analytics_watermark SET watermark = w_new, refreshed_at = now();
    COMMIT;

    -- 4. Once the watermark has entered a new day, tell the views, so that they prune the
    -- partitions below it. Best effort: replacing a view waits for the queries reading it,
    -- and queues new ones meanwhile, so it gives up after a second and tries next time.
    IF (SELECT live_from FROM analytics_watermark) < analytics_day(w_new) THEN
        BEGIN
            SET LOCAL lock_timeout = '1s';
            PERFORM analytics_views(analytics_day(w_new));
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'analytics refresh: views busy, their pruning bound stays behind';
        END;
        COMMIT;
    END IF;
END $$;

-- analytics_create_partitions creates the daily partitions of the next partitions_ahead days,
-- of every day that has rows in the default partition (moving them there) and of every day
-- of [from_day, to_day) when given (before a bulk load of history, say); with a retention
-- set it drops the partitions older than it once they are materialized. Each partition is
-- its own transaction; a lock it cannot get within 2 s is left for the next run. It returns
-- how many partitions it created and dropped.
CREATE PROCEDURE analytics_create_partitions(INOUT created integer DEFAULT 0, INOUT dropped integer DEFAULT 0,
                                             from_day timestamptz DEFAULT NULL, to_day timestamptz DEFAULT NULL)
LANGUAGE plpgsql AS $$
{{- template "partitions_begin"}}
    days := ARRAY(
        SELECT today + n * interval '24 hours' FROM generate_series(0, cfg.partitions_ahead) n
        UNION
        SELECT DISTINCT analytics_day(time) FROM sales_facts_default
        UNION
        SELECT g FROM generate_series(analytics_day(from_day), to_day - interval '1 microsecond', interval '24 hours') g
        WHERE from_day IS NOT NULL AND to_day IS NOT NULL
        ORDER BY 1);
{{- template "partitions_each_day"}}
        SET LOCAL lock_timeout = '2s';
        EXECUTE format('CREATE TABLE %I (LIKE sales_facts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        -- The bound as a constraint spares ATTACH a scan of the new table.
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (time >= %L AND time < %L)',
                       part, part || '_bound', d, d + interval '24 hours');
        -- Moved, not changed: straight from partition to table, so no trigger logs it.
        EXECUTE format('WITH moved AS (DELETE FROM sales_facts_default WHERE time >= %L AND time < %L RETURNING *)
                        INSERT INTO %I SELECT * FROM moved', d, d + interval '24 hours', part);
{{- template "partitions_attach"}}
END $$;

-- analytics_configure applies the settings of AnalyticsSettings: retention drops raw
-- partitions (see analytics_create_partitions) and bounds the refresh window to the retained
-- facts. Compression is TimescaleDB's: here compress_after is accepted and ignored.
CREATE FUNCTION analytics_configure(compress_after interval, retain_for interval) RETURNS void
LANGUAGE sql AS $$
    UPDATE analytics_settings SET retain_for = $2, start_offset = $2
    WHERE retain_for IS DISTINCT FROM $2 OR start_offset IS DISTINCT FROM $2
$$;
COMMENT ON FUNCTION analytics_configure(interval, interval) IS
    'retention of raw partitions and the refresh window; compress_after is TimescaleDB''s and ignored here';

CREATE FUNCTION analytics_mode() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'postgres' $$;
