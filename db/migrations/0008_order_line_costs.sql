-- Order lines keep what their sales facts are made of: the unit cost and the brand at the time
-- of the sale. A cancellation negates the facts of the order's own lines, so that it takes
-- back exactly what the sale counted (even once retention has dropped the raw facts, or the
-- product's cost or brand has changed since).

ALTER TABLE order_lines ADD COLUMN unit_cost_cents bigint, ADD COLUMN brand_id uuid;

-- Lines that exist already: from their sales facts where those are kept, else the product.
UPDATE order_lines l SET unit_cost_cents = p.cost_cents, brand_id = p.brand_id
FROM products p WHERE p.id = l.product_id;
UPDATE order_lines l SET unit_cost_cents = f.cost_cents / f.units, brand_id = f.brand_id
FROM orders o, sales_facts f
WHERE o.id = l.order_id AND f.order_id = o.id AND f.time = o.created_at AND f.product_id = l.product_id AND f.units > 0;

-- New lines take the product's current cost and brand unless the writer gives them.
CREATE FUNCTION order_lines_fill_cost() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.unit_cost_cents IS NULL OR NEW.brand_id IS NULL THEN
        SELECT coalesce(NEW.unit_cost_cents, p.cost_cents), coalesce(NEW.brand_id, p.brand_id)
        INTO NEW.unit_cost_cents, NEW.brand_id
        FROM products p WHERE p.id = NEW.product_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER order_lines_fill_cost BEFORE INSERT ON order_lines
    FOR EACH ROW EXECUTE FUNCTION order_lines_fill_cost();

ALTER TABLE order_lines ALTER COLUMN unit_cost_cents SET NOT NULL;
