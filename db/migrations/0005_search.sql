-- Search: what the PostgreSQL engine needs beyond the tsvector of 0001 (a vocabulary for typo
-- tolerance, a trigram index for suggestions, a tsquery builder that never parses user text,
-- a narrow table of active products with their facet values as integer codes), and the
-- merchandisers' relevance controls (synonyms, weights, per-query rules) with the
-- search log behind the insights. Every change to a control writes an outbox row in its own
-- transaction, so the Elasticsearch indexer can push synonyms into its index settings.

-- Suggestions: active product names with a word starting with a prefix, as
-- lower(name) LIKE '%prefix%' (then a word-boundary recheck), served by this index.
CREATE INDEX products_active_name_trgm_idx ON products USING gin (lower(name) gin_trgm_ops)
    WHERE status = 'ACTIVE';

-- Building a tsquery from words. The engine passes the words of a query as data: units of
-- alternatives, [[{"t": "sofa", "phrase": false}, {"t": "couch", "phrase": true}], ...].
-- A unit matches when any alternative does (OR), a query when every unit does (AND). The
-- texts only ever reach plainto_tsquery/phraseto_tsquery, which treat them as words, so
-- nothing a shopper types is parsed as tsquery syntax. Stop words give empty tsqueries,
-- which tsquery_and/tsquery_or ignore; no units at all give NULL, which matches nothing.
CREATE AGGREGATE search_tsquery_or_agg(tsquery) (SFUNC = tsquery_or, STYPE = tsquery);
CREATE AGGREGATE search_tsquery_and_agg(tsquery) (SFUNC = tsquery_and, STYPE = tsquery);

-- PL/pgSQL rather than SQL: a SQL function that cannot be inlined is parsed and planned
-- at every call, a PL/pgSQL function plans its query once per session.
CREATE FUNCTION search_tsquery(units jsonb) RETURNS tsquery LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT search_tsquery_and_agg(unit.q)
              FROM (SELECT search_tsquery_or_agg(CASE WHEN (alt ->> 'phrase')::boolean
                                                      THEN phraseto_tsquery('english'::regconfig, alt ->> 't')
                                                      ELSE plainto_tsquery('english'::regconfig, alt ->> 't') END) AS q
                      FROM jsonb_array_elements(units) WITH ORDINALITY AS u(alts, n),
                           jsonb_array_elements(u.alts) AS alt
                     GROUP BY u.n) unit);
END $$;

-- The vocabulary of the catalog, for typo tolerance: every word of product names and
-- descriptions and of brand and category names, lowercase, with its English lexeme (the
-- stem the tsvector holds). A query word whose lexeme is not here is unknown, and is replaced
-- by the nearest words by edit distance, found among the trigram-nearest (KNN on the GiST
-- index). Words are only ever added: a word whose products are gone costs nothing but a
-- candidate that matches no product.
CREATE TABLE search_words (
    word   text PRIMARY KEY,
    lexeme text NOT NULL
);
CREATE INDEX search_words_trgm_idx ON search_words USING gist (word gist_trgm_ops);
CREATE INDEX search_words_lexeme_idx ON search_words (lexeme);

-- search_word_rows splits text into vocabulary words: runs of 3 to 30 letters, lowercase, that
-- are not English stop words.
CREATE FUNCTION search_word_rows(doc text) RETURNS TABLE (word text, lexeme text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT w.word, (tsvector_to_array(to_tsvector('english'::regconfig, w.word)))[1]
      FROM unnest(tsvector_to_array(to_tsvector('simple'::regconfig, doc))) AS w(word)
     WHERE w.word ~ '^[[:alpha:]]{3,30}$'
$$;

-- remember_search_words adds the words of docs to the vocabulary, in word order so that
-- concurrent writers adding the same new words wait for each other instead of deadlocking.
-- ON CONFLICT DO NOTHING takes no lock on words already known: product writes never queue
-- behind each other here.
CREATE FUNCTION remember_search_words(docs text[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO search_words (word, lexeme)
    SELECT w.word, w.lexeme
      FROM (SELECT DISTINCT r.word, r.lexeme
              FROM unnest(docs) AS d(doc), search_word_rows(d.doc) AS r
             WHERE r.lexeme IS NOT NULL) w
     ORDER BY w.word
        ON CONFLICT (word) DO NOTHING
$$;

-- Facets as integer codes. Counting facets over thousands of products is what a search
-- spends its time on, and it is cheapest over small integers: every facet value a filter
-- can select (a leaf category, a brand, an attribute value) has a code in search_terms, and
-- the distinct sets of attribute codes products have are numbered in search_attr_sets, so
-- that counting attribute values is grouping products by one integer and then spreading
-- a few hundred sets over their codes. Codes are only ever added, and never change: a code
-- whose products are gone costs nothing but a row.

-- The attribute keys that are facets: only their values get codes, so that measurements
-- (width_cm, weight_kg: thousands of distinct numbers) neither bloat the sets nor cost a
-- search anything. The engine adds the keys of its configuration (search.Postgres), which
-- rebuilds the codes of every product (search_facet_keys_changed).
CREATE TABLE search_facet_keys (
    key text PRIMARY KEY
);
INSERT INTO search_facet_keys (key)
VALUES ('color'), ('material'), ('finish'), ('size'), ('shape'), ('style'), ('pile_height'),
       ('thread_count'), ('wattage'), ('bulb_type'), ('color_temperature_k'), ('dimmable'),
       ('weather_resistant'), ('assembly_required');

-- facet is 'category' or 'brand' with the id as text as value, or 'attr.<key>' with the
-- attribute's value as ->> spells it (numbers and booleans as their JSON text).
CREATE TABLE search_terms (
    code  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    facet text NOT NULL,
    value text NOT NULL,
    UNIQUE (facet, value)
);

-- codes: the attribute codes of a product, ascending (one array per distinct set).
CREATE TABLE search_attr_sets (
    id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    codes integer[] NOT NULL UNIQUE
);

-- The facet terms of attributes: the scalar values of facet keys.
CREATE FUNCTION search_attribute_terms(attributes jsonb) RETURNS TABLE (facet text, value text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT 'attr.' || a.key, a.value
      FROM jsonb_each_text(attributes) AS a
     WHERE jsonb_typeof(attributes -> a.key) IN ('string', 'number', 'boolean')
       AND a.key IN (SELECT k.key FROM search_facet_keys k)
$$;

-- The codes of those terms, ascending; terms without a code yet are left out (the writers
-- below add the codes first).
CREATE FUNCTION search_attribute_codes(attributes jsonb) RETURNS integer[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(t.code ORDER BY t.code), '{}')
      FROM search_attribute_terms(attributes) a
      JOIN search_terms t ON t.facet = a.facet AND t.value = a.value
$$;

-- What searches read of active products, in two tables kept in one place: the products
-- table is wide (names, descriptions, slugs), and a search that counts facets over
-- thousands of products spends its time reading rows. search_docs serves searches with
-- words: the tsvector on its GIN index, and beside it what ranks, sorts, filters and counts
-- the products the words find. search_facets serves browsing: the same columns but the
-- tsvector, which is most of a row, so that a browse that counts facets over thousands of
-- products reads a third of the pages (and its GIN index of codes is the only index a
-- facet filter needs). Fixed-width columns come first so that they are found without
-- walking the variable-length ones. terms holds the codes of the product's category,
-- brand and attribute values, which every facet filter matches with && (the filters of a
-- browse are one scan of one index, not a bitmap per filter); attr_set numbers its
-- attribute codes for counting. Only ACTIVE products have rows; triggers on products keep
-- them in step, in the writing transaction, so search never lags the catalog.
CREATE TABLE search_docs (
    product_id    uuid PRIMARY KEY,
    category_id   uuid NOT NULL,
    brand_id      uuid,
    price_cents   bigint NOT NULL,
    cost_cents    bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    popularity    integer NOT NULL,
    attr_set      integer NOT NULL,
    rating        numeric(3, 2) NOT NULL,
    terms         integer[] NOT NULL,
    search_vector tsvector NOT NULL
);
CREATE TABLE search_facets (
    product_id  uuid PRIMARY KEY,
    category_id uuid NOT NULL,
    brand_id    uuid,
    price_cents bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    popularity  integer NOT NULL,
    attr_set    integer NOT NULL,
    rating      numeric(3, 2) NOT NULL,
    terms       integer[] NOT NULL
);

-- search_index_products brings the rows of search_docs and search_facets of the products
-- ids in step with them: codes for new terms and attribute sets first, in (facet, value)
-- and codes order so that concurrent writers adding the same new ones wait for each other
-- instead of deadlocking (ON CONFLICT DO NOTHING takes no lock on what is known: product
-- writes never queue behind each other here), then the rows, each statement seeing the
-- codes the one before added. Bulk loads write in category order: a category's products then share pages,
-- and browsing a category reads a sixth of the pages it reads when they are scattered.
CREATE FUNCTION search_index_products(ids uuid[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(ids) = 0 THEN
        RETURN; -- most product writes (stock, a price) change no facet value
    END IF;
    INSERT INTO search_terms (facet, value)
    SELECT DISTINCT t.facet, t.value
      FROM unnest(ids) AS u(id)
      JOIN products p ON p.id = u.id AND p.status = 'ACTIVE'
     CROSS JOIN LATERAL (SELECT 'category', p.category_id::text
                         UNION ALL SELECT 'brand', p.brand_id::text WHERE p.brand_id IS NOT NULL
                         UNION ALL SELECT a.facet, a.value FROM search_attribute_terms(p.attributes) a) t(facet, value)
     ORDER BY 1, 2
        ON CONFLICT (facet, value) DO NOTHING;
    INSERT INTO search_attr_sets (codes)
    SELECT DISTINCT search_attribute_codes(p.attributes)
      FROM unnest(ids) AS u(id) JOIN products p ON p.id = u.id AND p.status = 'ACTIVE'
     ORDER BY 1
        ON CONFLICT (codes) DO NOTHING;
    DELETE FROM search_docs d
     USING unnest(ids) AS u(id)
     WHERE d.product_id = u.id
       AND NOT EXISTS (SELECT FROM products p WHERE p.id = u.id AND p.status = 'ACTIVE');
    DELETE FROM search_facets d
     USING unnest(ids) AS u(id)
     WHERE d.product_id = u.id
       AND NOT EXISTS (SELECT FROM products p WHERE p.id = u.id AND p.status = 'ACTIVE');
    INSERT INTO search_docs
    SELECT p.id, p.category_id, p.brand_id, p.price_cents, p.cost_cents, p.created_at, p.popularity, s.id,
           p.rating, ARRAY[c.code] || b.codes || s.codes, p.search_vector
      FROM unnest(ids) AS u(id)
      JOIN products p ON p.id = u.id AND p.status = 'ACTIVE'
      JOIN search_attr_sets s ON s.codes = search_attribute_codes(p.attributes)
      JOIN search_terms c ON c.facet = 'category' AND c.value = p.category_id::text
     CROSS JOIN LATERAL (SELECT ARRAY(SELECT t.code FROM search_terms t
                                       WHERE t.facet = 'brand' AND t.value = p.brand_id::text) AS codes) b
     ORDER BY p.category_id, p.price_cents
        ON CONFLICT (product_id) DO UPDATE SET
           category_id = excluded.category_id, brand_id = excluded.brand_id,
           price_cents = excluded.price_cents, cost_cents = excluded.cost_cents,
           created_at = excluded.created_at, popularity = excluded.popularity, attr_set = excluded.attr_set,
           rating = excluded.rating, terms = excluded.terms, search_vector = excluded.search_vector;
    INSERT INTO search_facets
    SELECT d.product_id, d.category_id, d.brand_id, d.price_cents, d.created_at, d.popularity, d.attr_set,
           d.rating, d.terms
      FROM unnest(ids) AS u(id) JOIN search_docs d ON d.product_id = u.id
     ORDER BY d.category_id, d.price_cents
        ON CONFLICT (product_id) DO UPDATE SET
           category_id = excluded.category_id, brand_id = excluded.brand_id,
           price_cents = excluded.price_cents, created_at = excluded.created_at,
           popularity = excluded.popularity, attr_set = excluded.attr_set, rating = excluded.rating,
           terms = excluded.terms;
END $$;

-- The rows of search_docs and search_facets for products: one statement per event with
-- transition tables, so a bulk load (COPY of 100k products) costs one pass; updates rewrite
-- only the rows whose searchable columns changed, and add the words of changed texts to the
-- vocabulary.
CREATE FUNCTION products_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    texts text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE search_docs, search_facets;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM search_docs d USING old_rows o WHERE d.product_id = o.id;
        DELETE FROM search_facets d USING old_rows o WHERE d.product_id = o.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        PERFORM remember_search_words(ARRAY(SELECT n.name || ' ' || n.description FROM new_rows n));
        PERFORM search_index_products(ARRAY(SELECT n.id FROM new_rows n WHERE n.status = 'ACTIVE'));
        RETURN NULL;
    END IF;
    -- A SQL function is planned at every call: not called for nothing.
    texts := ARRAY(SELECT n.name || ' ' || n.description
                     FROM new_rows n JOIN old_rows o ON o.id = n.id
                    WHERE n.name IS DISTINCT FROM o.name OR n.description IS DISTINCT FROM o.description);
    IF cardinality(texts) > 0 THEN
        PERFORM remember_search_words(texts);
    END IF;
    -- Products that stay active with the same facet values (repriced, say) keep their codes.
    -- No index of search_docs but the tsvector's covers these columns, so a repricing can
    -- update it in place (HOT).
    UPDATE search_docs d
       SET price_cents = n.price_cents, cost_cents = n.cost_cents, created_at = n.created_at,
           popularity = n.popularity, rating = n.rating, search_vector = n.search_vector
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE d.product_id = n.id AND n.status = 'ACTIVE' AND o.status = 'ACTIVE'
       AND (o.category_id, o.brand_id, o.attributes) IS NOT DISTINCT FROM (n.category_id, n.brand_id, n.attributes)
       AND (o.price_cents, o.cost_cents, o.created_at, o.popularity, o.rating, o.search_vector)
           IS DISTINCT FROM (n.price_cents, n.cost_cents, n.created_at, n.popularity, n.rating, n.search_vector);
    UPDATE search_facets d
       SET price_cents = n.price_cents, created_at = n.created_at, popularity = n.popularity, rating = n.rating
      FROM new_rows n JOIN old_rows o ON o.id = n.id
     WHERE d.product_id = n.id AND n.status = 'ACTIVE' AND o.status = 'ACTIVE'
       AND (o.category_id, o.brand_id, o.attributes) IS NOT DISTINCT FROM (n.category_id, n.brand_id, n.attributes)
       AND (o.price_cents, o.created_at, o.popularity, o.rating)
           IS DISTINCT FROM (n.price_cents, n.created_at, n.popularity, n.rating);
    PERFORM search_index_products(ARRAY(
        SELECT n.id
          FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE (o.status, o.category_id, o.brand_id, o.attributes)
               IS DISTINCT FROM (n.status, n.category_id, n.brand_id, n.attributes)));
    RETURN NULL;
END $$;
CREATE TRIGGER products_search_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_search_sync();
CREATE TRIGGER products_search_update AFTER UPDATE ON products
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_search_sync();
CREATE TRIGGER products_search_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION products_search_sync();
CREATE TRIGGER products_search_truncate AFTER TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION products_search_sync();

-- Another set of facet keys gives every product other attribute codes.
CREATE FUNCTION search_facet_keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM search_index_products(ARRAY(SELECT id FROM products WHERE status = 'ACTIVE'));
    RETURN NULL;
END $$;
CREATE TRIGGER search_facet_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON search_facet_keys
    FOR EACH STATEMENT EXECUTE FUNCTION search_facet_keys_changed();

-- Brand and category names are in the tsvector (weight B), so their words are vocabulary too.
CREATE FUNCTION names_search_words_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remember_search_words(ARRAY[NEW.name]);
    RETURN NULL;
END $$;
CREATE TRIGGER brands_search_words AFTER INSERT OR UPDATE OF name ON brands
    FOR EACH ROW EXECUTE FUNCTION names_search_words_trigger();
CREATE TRIGGER categories_search_words AFTER INSERT OR UPDATE OF name ON categories
    FOR EACH ROW EXECUTE FUNCTION names_search_words_trigger();

-- The words and documents of what is already there; the indexes are built after the load.
SELECT remember_search_words(ARRAY(
    SELECT name || ' ' || description FROM products
    UNION ALL SELECT name FROM brands
    UNION ALL SELECT name FROM categories));
SELECT search_index_products(ARRAY(SELECT id FROM products WHERE status = 'ACTIVE'));

-- With words, the words find the products (their filters are checked on them, see
-- search.Postgres): search_docs needs no other index.
CREATE INDEX search_docs_vector_idx ON search_docs USING gin (search_vector);
CREATE INDEX search_facets_terms_idx ON search_facets USING gin (terms);
-- Price and rating filters are ranges: when the other filters leave many products, these
-- find the few in range.
CREATE INDEX search_facets_price_idx ON search_facets (price_cents);
CREATE INDEX search_facets_rating_idx ON search_facets (rating);

-- Relevance controls. Terms and queries are stored normalized (lowercase, single spaces).

CREATE TABLE search_synonyms (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind       text NOT NULL CHECK (kind IN ('EQUIVALENT', 'ONE_WAY')),
    terms      text[] NOT NULL,
    synonyms   text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- EQUIVALENT: a set of two or more terms that all find each other; ONE_WAY: terms that
    -- also find the synonyms.
    CHECK (CASE kind WHEN 'EQUIVALENT' THEN cardinality(terms) >= 2 AND cardinality(synonyms) = 0
                     ELSE cardinality(terms) >= 1 AND cardinality(synonyms) >= 1 END)
);

-- One row per normalized query: pinned products in order, and boosts as
-- [{"brandId": ..., "categoryId": ..., "factor": 2.5}].
CREATE TABLE search_query_rules (
    query       text PRIMARY KEY CHECK (query <> '' AND query = lower(query)),
    pinned_ids  uuid[] NOT NULL DEFAULT '{}',
    boosts      jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(boosts) = 'array'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The relevance weights: exactly one row.
CREATE TABLE search_weights (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    popularity double precision NOT NULL CHECK (popularity BETWEEN 0 AND 10),
    recency    double precision NOT NULL CHECK (recency BETWEEN 0 AND 10),
    margin     double precision NOT NULL CHECK (margin BETWEEN 0 AND 10),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO search_weights (popularity, recency, margin) VALUES (1, 0.5, 0);

-- Every change to a control is an outbox event with a version from this sequence: the
-- indexer applies the newest controls and can skip an event older than what it applied.
CREATE SEQUENCE search_controls_version;

CREATE FUNCTION search_controls_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload)
    VALUES ('search', 'controls', 'search.controls.updated', nextval('search_controls_version'),
            jsonb_build_object('table', TG_TABLE_NAME, 'op', TG_OP));
    RETURN NULL;
END $$;
-- A trigger rather than the writers' statements: a control changed by hand in psql reaches
-- the index too.
CREATE TRIGGER search_synonyms_changed AFTER INSERT OR UPDATE OR DELETE ON search_synonyms
    FOR EACH ROW EXECUTE FUNCTION search_controls_changed();
CREATE TRIGGER search_query_rules_changed AFTER INSERT OR UPDATE OR DELETE ON search_query_rules
    FOR EACH ROW EXECUTE FUNCTION search_controls_changed();
CREATE TRIGGER search_weights_changed AFTER INSERT OR UPDATE OR DELETE ON search_weights
    FOR EACH ROW EXECUTE FUNCTION search_controls_changed();

-- The search log behind the insights: one row per normalized query, bumped by one upsert per
-- search. No index covers the counters, so the bump is a HOT update (fillfactor leaves room
-- on the page) and touches no index; the insights sort the table, which is small and read
-- rarely.
CREATE TABLE search_log (
    query        text PRIMARY KEY,
    searches     bigint NOT NULL DEFAULT 0,
    zero_results bigint NOT NULL DEFAULT 0,
    last_seen    timestamptz NOT NULL DEFAULT now(),
    last_zero_at timestamptz
) WITH (fillfactor = 70);
