-- Replaced in 0006: analytics_refresh, analytics_policies.
-- Replaced in 0010: analytics_policies.
-- The definitions below are those of databases migrated to 0005 only; read the later ones
-- for what runs.
-- A template: rendered with the shared templates of analytics.tmpl before it runs (db/render.go).
--
-- Sales analytics on TimescaleDB: the facts in a hypertable of one-day chunks, hourly and
-- daily continuous aggregates with real-time aggregation, refresh, compression and retention
-- policies. 0004_analytics.postgres.sql builds the same relations, columns and semantics on
-- plain PostgreSQL; the application's queries are the same in both.

CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE sales_facts (
{{- template "sales_facts_columns"}}
);
SELECT create_hypertable('sales_facts', by_range('time', INTERVAL '1 day'));
CREATE INDEX sales_facts_order_idx ON sales_facts (order_id, time);

-- Raw facts are compressed by product once older than compress_after (analytics_configure).
ALTER TABLE sales_facts SET (timescaledb.compress, timescaledb.compress_segmentby = 'product_id',
                             timescaledb.compress_orderby = 'time DESC');

{{template "cagg" (level "sales_hourly" "sales_facts")}}

{{template "cagg" (level "sales_daily" "sales_hourly")}}

-- analytics_policies (re)creates the refresh policies. start_offset NULL: a refresh
-- re-aggregates invalidated ranges of any age (TimescaleDB refreshes only what the
-- invalidation log names, so old untouched history costs nothing); with a retention it is
-- the retention, so that the aggregates of dropped facts survive. TimescaleDB 2.19+ refreshes
-- a large range in batches, by default of one bucket each: a backfilled year would take 8,760
-- transactions, so batches are a week of hours and a month of days here.
CREATE FUNCTION analytics_policies(start_offset interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
{{- template "policies_variables"}}
BEGIN
    PERFORM remove_continuous_aggregate_policy('sales_hourly', if_exists => true);
    PERFORM remove_continuous_aggregate_policy('sales_daily', if_exists => true);
    EXECUTE add USING 'sales_hourly'::regclass, start_offset, INTERVAL '1 hour', INTERVAL '5 minutes', 7 * 24;
    EXECUTE add USING 'sales_daily'::regclass, start_offset, INTERVAL '1 day', INTERVAL '30 minutes', 31;
END $$;
SELECT analytics_policies(NULL);
SELECT add_compression_policy('sales_facts', compress_after => INTERVAL '7 days');

-- analytics_refresh runs the refresh policies now, hourly before daily (the daily aggregate
-- reads the hourly one). TimescaleDB's scheduler runs them too where it has background
-- workers; running one again is harmless. CALL it outside a transaction.
CREATE PROCEDURE analytics_refresh()
LANGUAGE plpgsql AS $$
DECLARE
    jobs integer[];
    job  integer;
BEGIN
    jobs := ARRAY(
        SELECT j.id
        FROM _timescaledb_config.bgw_job j
        JOIN _timescaledb_catalog.continuous_agg c ON c.mat_hypertable_id = (j.config ->> 'mat_hypertable_id')::integer
        WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
          AND c.user_view_schema = current_schema() AND c.user_view_name IN ('sales_hourly', 'sales_daily')
        ORDER BY c.user_view_name = 'sales_daily', j.id);
    FOREACH job IN ARRAY jobs LOOP
        CALL run_job(job);
    END LOOP;
END $$;

-- Chunks are created as facts arrive: nothing to do ahead of time.
CREATE PROCEDURE analytics_create_partitions(INOUT created integer DEFAULT 0, INOUT dropped integer DEFAULT 0,
                                             from_day timestamptz DEFAULT NULL, to_day timestamptz DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
    created := 0;
    dropped := 0;
END $$;

-- analytics_configure sets the compression and retention policies of the raw facts
-- (NULL: none), and bounds the refresh window to the retained facts. It changes only what
-- differs, so that calling it at every start is cheap.
CREATE FUNCTION analytics_configure(compress_after interval, retain_for interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    current   interval;
    found_job boolean;
BEGIN
    -- Instances starting together: one at a time, the later ones finding nothing to change.
    PERFORM pg_advisory_xact_lock(7246, 5);
    SELECT (config ->> 'compress_after')::interval INTO current
    FROM timescaledb_information.jobs
    WHERE proc_name = 'policy_compression' AND hypertable_name = 'sales_facts';
    IF current IS DISTINCT FROM compress_after THEN
        PERFORM remove_compression_policy('sales_facts', if_exists => true);
        IF compress_after IS NOT NULL THEN
            PERFORM add_compression_policy('sales_facts', compress_after => compress_after);
        END IF;
    END IF;

    current := NULL;
    SELECT (config ->> 'drop_after')::interval INTO current
    FROM timescaledb_information.jobs
    WHERE proc_name = 'policy_retention' AND hypertable_name = 'sales_facts';
    IF current IS DISTINCT FROM retain_for THEN
        PERFORM remove_retention_policy('sales_facts', if_exists => true);
        IF retain_for IS NOT NULL THEN
            PERFORM add_retention_policy('sales_facts', drop_after => retain_for);
        END IF;
    END IF;

    current := NULL;
    found_job := false;
    SELECT (j.config ->> 'start_offset')::interval, true INTO current, found_job
    FROM _timescaledb_config.bgw_job j
    JOIN _timescaledb_catalog.continuous_agg c ON c.mat_hypertable_id = (j.config ->> 'mat_hypertable_id')::integer
    WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
      AND c.user_view_schema = current_schema() AND c.user_view_name = 'sales_hourly';
    IF NOT coalesce(found_job, false) OR current IS DISTINCT FROM retain_for THEN
        PERFORM analytics_policies(retain_for);
    END IF;
END $$;

CREATE FUNCTION analytics_mode() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'timescaledb' $$;
