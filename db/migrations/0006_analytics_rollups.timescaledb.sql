-- Replaces 0004: analytics_refresh, analytics_policies (they cover the new levels too).
-- A template: rendered with the shared templates of analytics.tmpl before it runs (db/render.go).
--
-- Coarser sales rollups on TimescaleDB; 0006_analytics_rollups.postgres.sql builds the same
-- relations and columns on plain PostgreSQL (see there for what each level keeps and why).
--
-- Continuous aggregates on continuous aggregates: the hourly levels on sales_hourly (a bucket
-- of the same width, which TimescaleDB 2.23 accepts), the daily levels on the hourly level of
-- the same dimensions. Built on aggregates rather than the hypertable, they read partial sums
-- that outlive the raw facts, so their refresh policies need no start_offset even when
-- retention drops raw chunks; and a new level over existing history materializes all of it
-- at its first refresh (created WITH NO DATA, everything is invalid).

{{range slice (family "hourly" "sales_facts") 1}}{{template "cagg" .}}

{{end -}}
{{range $i, $l := slice (family "daily" "sales_hourly") 1}}{{if $i}}

{{end}}{{template "cagg" $l}}{{end}}

-- analytics_caggs lists the analytics continuous aggregates with their depth in the hierarchy
-- (0: on the hypertable; 1: on one of those; ...): ordered by depth, sources come first.
CREATE FUNCTION analytics_caggs() RETURNS TABLE (view regclass, name text, depth integer)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE tree AS (
        SELECT c.mat_hypertable_id, c.user_view_schema, c.user_view_name, 0 AS depth
        FROM _timescaledb_catalog.continuous_agg c
        WHERE c.parent_mat_hypertable_id IS NULL
        UNION ALL
        SELECT c.mat_hypertable_id, c.user_view_schema, c.user_view_name, tree.depth + 1
        FROM _timescaledb_catalog.continuous_agg c
        JOIN tree ON c.parent_mat_hypertable_id = tree.mat_hypertable_id
    )
    SELECT format('%I.%I', user_view_schema, user_view_name)::regclass, user_view_name::text, depth
    FROM tree
    WHERE user_view_schema = current_schema() AND user_view_name LIKE 'sales\_%'
$$;

-- analytics_policies (re)creates the refresh policies (see 0004). Only sales_hourly, the one
-- aggregate on the raw facts, takes start_offset (the retention): the others read
-- aggregates, which keep the sales of dropped facts, so they may re-aggregate any range.
CREATE OR REPLACE FUNCTION analytics_policies(start_offset interval) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
{{- template "policies_variables"}}
    agg record;
    daily boolean;
BEGIN
    FOR agg IN SELECT a.view, a.name FROM analytics_caggs() a LOOP
        daily := agg.name LIKE 'sales\_daily%';
        PERFORM remove_continuous_aggregate_policy(agg.view, if_exists => true);
        EXECUTE add USING agg.view,
            CASE WHEN agg.name = 'sales_hourly' THEN start_offset END,
            CASE WHEN daily THEN INTERVAL '1 day' ELSE INTERVAL '1 hour' END,
            CASE WHEN daily THEN INTERVAL '30 minutes' ELSE INTERVAL '5 minutes' END,
            CASE WHEN daily THEN 31 ELSE 7 * 24 END;
    END LOOP;
END $$;
{{template "policies_again"}}

-- analytics_refresh runs every refresh policy now, each after those of its sources, so that a
-- level built on another sees it refreshed. CALL it outside a transaction. The COMMIT after
-- each job is needed: without it, measured on TimescaleDB 2.23, a job run next in the same
-- procedure call may leave some of the invalidations its source's job just logged for a
-- later run (the daily aggregate then missed late facts of some days after a refresh).
CREATE OR REPLACE PROCEDURE analytics_refresh()
LANGUAGE plpgsql AS $$
DECLARE
    jobs integer[];
    job  integer;
BEGIN
    jobs := ARRAY(
        SELECT j.id
        FROM analytics_caggs() a
        JOIN _timescaledb_catalog.continuous_agg c
          ON c.user_view_schema = current_schema() AND c.user_view_name = a.name
        JOIN _timescaledb_config.bgw_job j ON (j.config ->> 'mat_hypertable_id')::integer = c.mat_hypertable_id
        WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
        ORDER BY a.depth, a.name, j.id);
    FOREACH job IN ARRAY jobs LOOP
        CALL run_job(job);
        COMMIT;
    END LOOP;
END $$;
