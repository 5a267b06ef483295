-- TimescaleDB creates a chunk for a fact's day as the fact arrives, under the locks that make
-- it safe: nothing changes here (see 0009_analytics_partitions.postgres.sql).
SELECT 1;
