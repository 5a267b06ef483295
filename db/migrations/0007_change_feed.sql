-- Replaces 0002: outbox_fan_out (its trigger dropped and created again: the function fills
-- the lanes).
--
-- The change feed (db/feed): lanes, consumer liveness, pruning.
--
-- Lanes. The first 100 outbox rows a transaction writes go to the fast lane of every
-- consumer's queue, the rest to the bulk lane; a relay drains the fast lane first (with any
-- older bulk rows of the same entities, so that an entity's events stay in order), so a
-- change is never stuck behind a repricing of ten thousand products. The count lives in a
-- transaction-local setting, so a transaction of many small statements is bulk too.
--
-- Liveness. Every instance running a consumer's relay marks it seen; the feed's maintenance
-- job switches a consumer off when nobody has seen it for a while (its queue is dropped and
-- no more rows are queued for it). A consumer that is new or comes back gets a new epoch, and
-- its leader resyncs it (a reconcile for search, a flush for the cache...) before relaying,
-- then records the epoch as synced.
--
-- Pruning. Rows of the outbox that no queue holds any more are deleted by the maintenance
-- job once they are older than its retention.

ALTER TABLE outbox_consumers
    ADD COLUMN active  boolean NOT NULL DEFAULT true,
    ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN epoch   bigint NOT NULL DEFAULT 1,
    ADD COLUMN synced_epoch bigint NOT NULL DEFAULT 0;
-- The consumers of before this migration have been fed all along.
UPDATE outbox_consumers SET synced_epoch = epoch;

ALTER TABLE outbox_pending ADD COLUMN bulk boolean NOT NULL DEFAULT false;
CREATE INDEX outbox_pending_fast_idx ON outbox_pending (consumer, outbox_id) WHERE NOT bulk;
-- Pruning asks, per outbox row, whether any queue still holds it.
CREATE INDEX outbox_pending_outbox_idx ON outbox_pending (outbox_id);
-- A fast batch brings along the older bulk rows of its entities.
CREATE INDEX outbox_entity_idx ON outbox (aggregate, aggregate_id, id);

DROP TRIGGER outbox_fan_out ON outbox;
CREATE OR REPLACE FUNCTION outbox_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    earlier bigint := coalesce(nullif(current_setting('storefront.outbox_rows', true), ''), '0')::bigint;
    added   bigint;
BEGIN
    SELECT count(*) INTO added FROM new_rows;
    PERFORM set_config('storefront.outbox_rows', (earlier + added)::text, true);
    INSERT INTO outbox_pending (consumer, outbox_id, bulk)
    SELECT c.name, n.id, earlier + n.rank > 100
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM new_rows) n
    CROSS JOIN outbox_consumers c
    WHERE c.active;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_fan_out AFTER INSERT ON outbox REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_fan_out();
