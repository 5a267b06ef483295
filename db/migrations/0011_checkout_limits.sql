-- Checkout limits against stock hoarding, and idempotency keys scoped to who checks out.
--
-- An idempotency key is the client's, so it is unique per customer, or per cart for a guest:
-- a guest's key no longer collides with another guest's (it used to be unique for the whole
-- shop, so one cart's key made every other cart's checkout with it a CONFLICT).
ALTER TABLE orders DROP CONSTRAINT orders_idempotency_key_key;
CREATE UNIQUE INDEX orders_idempotency_key ON orders ((coalesce(customer_id, cart_id::text)), idempotency_key);

-- A guest is known by email and by shipping address: checkout counts a guest's unpaid
-- orders by either, so that new carts do not make a new guest. An address is compared by
-- its street line, postal code and country, case and spacing aside.
CREATE FUNCTION guest_address_key(address jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT lower(regexp_replace(coalesce(address->>'line1', '') || '|' || coalesce(address->>'postalCode', '') || '|'
                                || coalesce(address->>'country', ''), '\s+', '', 'g'))
$$;
CREATE INDEX orders_unpaid_guest_email_idx ON orders (lower(email))
    WHERE status = 'PENDING_PAYMENT' AND customer_id IS NULL;
CREATE INDEX orders_unpaid_guest_address_idx ON orders (guest_address_key(shipping_address))
    WHERE status = 'PENDING_PAYMENT' AND customer_id IS NULL;
