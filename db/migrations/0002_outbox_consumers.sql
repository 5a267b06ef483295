-- Replaced in 0007: outbox_fan_out (lanes).
--
-- Every consumer of the outbox (cache invalidation now; search indexing and alerts later) has
-- its own queue of committed events: a trigger copies each new outbox row into the queue of
-- every registered consumer, and a consumer deletes what it has handled in the same
-- transaction in which it reads it. A high-water mark on outbox.id would not do: ids are
-- taken at insert time, so a transaction that commits late can add a row below the mark,
-- and that row would be skipped. Visibility does the work here instead.

CREATE TABLE outbox_consumers (
    name       text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outbox_pending (
    consumer  text NOT NULL REFERENCES outbox_consumers (name) ON DELETE CASCADE,
    outbox_id bigint NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    PRIMARY KEY (consumer, outbox_id)
);

CREATE FUNCTION outbox_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_pending (consumer, outbox_id) SELECT name, NEW.id FROM outbox_consumers;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_fan_out AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION outbox_fan_out();
