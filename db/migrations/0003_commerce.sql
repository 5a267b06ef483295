-- Commerce: carts, orders with their lines and stock allocations, the stock audit trail and
-- low-stock thresholds. Money is integer cents. Overselling is impossible by construction:
-- a checkout reserves stock with reserved_quantity += n under row locks, and the CHECKs of
-- 0001 (reserved_quantity <= quantity, nothing negative) refuse anything that slips through.

ALTER TABLE inventory
    ADD COLUMN low_stock_threshold integer NOT NULL DEFAULT 5 CHECK (low_stock_threshold >= 0);

CREATE TYPE cart_status AS ENUM ('OPEN', 'CHECKED_OUT', 'MERGED');

CREATE TABLE carts (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- A guest cart is addressed by a secret token; only its sha256 is stored, so that a
    -- leaked table does not leak carts.
    token_hash  bytea UNIQUE,
    customer_id text,
    status      cart_status NOT NULL DEFAULT 'OPEN',
    currency    char(3) NOT NULL DEFAULT 'USD',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (token_hash IS NOT NULL OR customer_id IS NOT NULL)
);
CREATE UNIQUE INDEX carts_one_open_per_customer ON carts (customer_id) WHERE status = 'OPEN';

CREATE TABLE cart_lines (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    cart_id              uuid NOT NULL REFERENCES carts (id) ON DELETE CASCADE,
    product_id           uuid NOT NULL REFERENCES products (id),
    quantity             integer NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    price_snapshot_cents bigint NOT NULL CHECK (price_snapshot_cents >= 0),
    -- clock_timestamp: the lines of one statement keep the order they were given in.
    added_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (cart_id, product_id)
);

CREATE TYPE order_status AS ENUM ('PENDING_PAYMENT', 'PAID', 'FULFILLED', 'CANCELLED');

CREATE TABLE orders (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    number              bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    customer_id         text,
    email               text NOT NULL,
    status              order_status NOT NULL DEFAULT 'PENDING_PAYMENT',
    currency            char(3) NOT NULL,
    total_cents         bigint NOT NULL CHECK (total_cents >= 0),
    shipping_address    jsonb NOT NULL DEFAULT '{}',
    -- A retried checkout finds its first order here; the constraint settles two racing ones.
    idempotency_key     text UNIQUE,
    cart_id             uuid NOT NULL REFERENCES carts (id),
    cancellation_reason text,
    version             bigint NOT NULL DEFAULT 1,
    expires_at          timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    paid_at             timestamptz,
    fulfilled_at        timestamptz,
    cancelled_at        timestamptz
);
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_customer_idx ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX orders_status_idx ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_unpaid_expiry_idx ON orders (expires_at) WHERE status = 'PENDING_PAYMENT';

-- Lines copy what the customer bought (sku, name, price, category) so that later catalog
-- changes rewrite neither the order nor the analytics of its cancellation.
CREATE TABLE order_lines (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id         uuid NOT NULL REFERENCES orders (id),
    product_id       uuid NOT NULL REFERENCES products (id),
    category_id      uuid NOT NULL,
    sku              text NOT NULL,
    name             text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
    UNIQUE (order_id, product_id)
);

CREATE TABLE order_allocations (
    order_line_id bigint NOT NULL REFERENCES order_lines (id),
    warehouse_id  uuid NOT NULL REFERENCES warehouses (id),
    quantity      integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_line_id, warehouse_id)
);

-- The ledger of on-hand stock: one row per change of inventory.quantity, so that the deltas
-- of a row explain its quantity. Reservations do not move stock and are not here; their
-- trail is order_allocations and the orders' timestamps.
CREATE TABLE stock_movements (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id     uuid NOT NULL,
    warehouse_id   uuid NOT NULL,
    delta          integer NOT NULL,
    quantity_after integer NOT NULL,
    reason         text NOT NULL,
    actor          text NOT NULL DEFAULT '',
    order_id       uuid REFERENCES orders (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (product_id, warehouse_id) REFERENCES inventory (product_id, warehouse_id)
);
CREATE INDEX stock_movements_product_idx ON stock_movements (product_id, created_at DESC, id DESC);
