-- Replaces 0004: analytics_create_partitions (dropped and created again below, attaching
-- only the partitions of days nobody writes yet).
-- A template: rendered with the shared templates of analytics.tmpl before it runs (db/render.go).
--
-- Daily partitions without a race with checkouts (plain PostgreSQL).
--
-- A fact routed to the default partition while a partition of its day is being attached fails
-- ("new row for relation sales_facts_default violates partition constraint"): the attach
-- narrows the default partition's constraint under the insert. 0004's procedure attached the
-- partition of any day that had facts in the default partition, moving them, and no partition
-- existed before its first run, so the first checkouts of a fresh database raced with it.
--
-- Now a partition is attached only for a day nobody writes yet: the job creates those of the
-- coming days (tomorrow onwards), while the days already begun (today, or history about to be
-- loaded) get theirs only when asked for explicitly (from_day, to_day), which the server does
-- before it serves and a bulk load before it loads. A day with rows in the default partition
-- keeps them there: rows are never moved, so nothing moves under live inserts either.

DROP PROCEDURE analytics_create_partitions(integer, integer, timestamptz, timestamptz);

-- analytics_create_partitions creates the daily partitions of the next partitions_ahead days
-- after today and, when given, of every day of [from_day, to_day), except days that have rows
-- in the default partition; with a retention set it drops the partitions older than it once
-- they are materialized. Each partition is its own transaction; a lock it cannot get within
-- 2 s is left for the next run. It returns how many partitions it created and dropped.
CREATE PROCEDURE analytics_create_partitions(INOUT created integer DEFAULT 0, INOUT dropped integer DEFAULT 0,
                                             from_day timestamptz DEFAULT NULL, to_day timestamptz DEFAULT NULL)
LANGUAGE plpgsql AS $$
{{- template "partitions_begin"}}
    days := ARRAY(
        SELECT today + n * interval '24 hours' FROM generate_series(1, cfg.partitions_ahead) n
        UNION
        SELECT g FROM generate_series(analytics_day(from_day), to_day - interval '1 microsecond', interval '24 hours') g
        WHERE from_day IS NOT NULL AND to_day IS NOT NULL
        ORDER BY 1);
{{- template "partitions_each_day"}}
        CONTINUE WHEN EXISTS (SELECT 1 FROM sales_facts_default WHERE time >= d AND time < d + interval '24 hours');
        SET LOCAL lock_timeout = '2s';
        EXECUTE format('CREATE TABLE %I (LIKE sales_facts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        -- The bound as a constraint spares ATTACH a scan of the new table.
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (time >= %L AND time < %L)',
                       part, part || '_bound', d, d + interval '24 hours');
{{- template "partitions_attach"}}
END $$;
