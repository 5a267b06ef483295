-- Customers: accounts that sign in with a password or through an external identity provider,
-- their address books, and the single-use tokens mailed to them (email verification and
-- password reset). orders.customer_id and carts.customer_id stay text: they hold a
-- customers.id, and tokens minted for other ids before accounts existed keep working.

CREATE TABLE customers (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Lower-cased on the way in; NULL for an identity provider's customer without a
    -- verified email.
    email             text CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    name              text NOT NULL CHECK (btrim(name) <> '' AND length(name) <= 200),
    -- An Argon2id hash in the PHC string format (parameters included); NULL for accounts of
    -- an identity provider, which never sign in with a password.
    password_hash     text,
    email_verified_at timestamptz,
    -- The identity provider's issuer and subject of a customer who signs in through it.
    issuer            text,
    subject           text,
    version           bigint NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((issuer IS NULL) = (subject IS NULL)),
    CHECK (password_hash IS NOT NULL OR issuer IS NOT NULL)
);
CREATE UNIQUE INDEX customers_email_key ON customers (email);
CREATE UNIQUE INDEX customers_identity_key ON customers (issuer, subject);

-- Guest order lookup and claiming find orders by email, whatever its case.
CREATE INDEX orders_email_idx ON orders (lower(email));

CREATE TABLE customer_addresses (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id      uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    address          jsonb NOT NULL,
    default_shipping boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX customer_addresses_customer_idx ON customer_addresses (customer_id, created_at);
CREATE UNIQUE INDEX customer_addresses_one_default ON customer_addresses (customer_id) WHERE default_shipping;

CREATE TYPE customer_token_purpose AS ENUM ('VERIFY_EMAIL', 'RESET_PASSWORD');

-- A token is mailed once and kept here only as its sha256: a leaked table opens nothing.
-- It works once (used_at), before expires_at, for the email it was mailed to.
CREATE TABLE customer_tokens (
    hash        bytea PRIMARY KEY,
    customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    purpose     customer_token_purpose NOT NULL,
    email       text NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_tokens_customer_idx ON customer_tokens (customer_id, purpose);

