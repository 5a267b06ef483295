-- Catalog: categories (a tree), brands, warehouses, products, inventory and the outbox.
-- Money is integer minor units (cents); nothing here is a float.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE categories (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    parent_id  uuid REFERENCES categories (id),
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    name       text NOT NULL CHECK (btrim(name) <> ''),
    -- Ids from the root down to this category, itself included: ancestors for breadcrumbs,
    -- and "this category and its descendants" as path @> ARRAY[id] on a GIN index.
    path       uuid[] NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (path[array_length(path, 1)] = id)
);
CREATE INDEX categories_parent_idx ON categories (parent_id, name, id);
CREATE INDEX categories_path_idx ON categories USING gin (path);

CREATE TABLE brands (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    name       text NOT NULL CHECK (btrim(name) <> ''),
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE warehouses (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    code       text NOT NULL UNIQUE,
    name       text NOT NULL,
    -- Lower numbers are preferred when an order has to be split across warehouses.
    priority   integer NOT NULL DEFAULT 100,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE product_status AS ENUM ('DRAFT', 'ACTIVE', 'ARCHIVED');

CREATE TABLE products (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sku           text NOT NULL UNIQUE CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]*$'),
    slug          text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    name          text NOT NULL CHECK (btrim(name) <> ''),
    description   text NOT NULL DEFAULT '',
    category_id   uuid NOT NULL REFERENCES categories (id),
    brand_id      uuid REFERENCES brands (id),
    price_cents   bigint NOT NULL CHECK (price_cents >= 0),
    cost_cents    bigint NOT NULL DEFAULT 0 CHECK (cost_cents >= 0),
    currency      char(3) NOT NULL DEFAULT 'USD',
    status        product_status NOT NULL DEFAULT 'DRAFT',
    attributes    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    search_vector tsvector NOT NULL DEFAULT '',
    popularity    integer NOT NULL DEFAULT 0 CHECK (popularity >= 0),
    rating        numeric(3, 2) NOT NULL DEFAULT 0 CHECK (rating BETWEEN 0 AND 5),
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_attributes_idx ON products USING gin (attributes jsonb_path_ops);
CREATE INDEX products_search_idx ON products USING gin (search_vector);
CREATE INDEX products_category_price_idx ON products (category_id, price_cents, id);
CREATE INDEX products_brand_idx ON products (brand_id);
-- Storefront reads see active products only: the partial indexes serve their sorts.
CREATE INDEX products_active_newest_idx ON products (created_at DESC, id DESC) WHERE status = 'ACTIVE';
CREATE INDEX products_active_popularity_idx ON products (popularity DESC, id DESC) WHERE status = 'ACTIVE';
CREATE INDEX products_active_price_idx ON products (price_cents, id) WHERE status = 'ACTIVE';
CREATE INDEX products_active_name_idx ON products (name, id) WHERE status = 'ACTIVE';

-- The search vector is the database's job: name A, brand and category B, description C.
CREATE FUNCTION product_search_vector(p_name text, p_description text, p_brand uuid, p_category uuid)
RETURNS tsvector LANGUAGE sql STABLE AS $$
    SELECT setweight(to_tsvector('english', coalesce(p_name, '')), 'A')
        || setweight(to_tsvector('english', coalesce((SELECT name FROM brands WHERE id = p_brand), '')), 'B')
        || setweight(to_tsvector('english', coalesce((SELECT name FROM categories WHERE id = p_category), '')), 'B')
        || setweight(to_tsvector('english', coalesce(p_description, '')), 'C')
$$;

CREATE FUNCTION products_search_vector_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_vector := product_search_vector(NEW.name, NEW.description, NEW.brand_id, NEW.category_id);
    RETURN NEW;
END $$;
CREATE TRIGGER products_search_vector BEFORE INSERT OR UPDATE OF name, description, brand_id, category_id
    ON products FOR EACH ROW EXECUTE FUNCTION products_search_vector_trigger();

-- A renamed brand or category changes the vectors of its products.
CREATE FUNCTION refresh_product_vectors_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'brands' THEN
        UPDATE products SET search_vector = product_search_vector(name, description, brand_id, category_id)
         WHERE brand_id = NEW.id;
    ELSE
        UPDATE products SET search_vector = product_search_vector(name, description, brand_id, category_id)
         WHERE category_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER brands_rename AFTER UPDATE OF name ON brands
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION refresh_product_vectors_trigger();
CREATE TRIGGER categories_rename AFTER UPDATE OF name ON categories
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION refresh_product_vectors_trigger();

CREATE TABLE inventory (
    product_id         uuid NOT NULL REFERENCES products (id),
    warehouse_id       uuid NOT NULL REFERENCES warehouses (id),
    quantity           integer NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    reserved_quantity  integer NOT NULL DEFAULT 0 CHECK (reserved_quantity >= 0),
    available_quantity integer GENERATED ALWAYS AS (quantity - reserved_quantity) STORED,
    version            bigint NOT NULL DEFAULT 1,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, warehouse_id),
    CHECK (reserved_quantity <= quantity)
);
CREATE INDEX inventory_warehouse_idx ON inventory (warehouse_id);

-- The outbox is the log of committed changes: written in the transaction of every catalog or
-- stock change, drained in id order by the relay. NOTIFY only wakes the relay, after commit.
CREATE TABLE outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    aggregate    text NOT NULL,
    aggregate_id text NOT NULL,
    kind         text NOT NULL,
    version      bigint NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
