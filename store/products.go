package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

const productColumns = `id, sku, slug, name, description, category_id, brand_id, price_cents, cost_cents,
    currency, status, attributes, popularity, rating, version, created_at, updated_at`

func scanProduct(row pgx.CollectableRow) (*model.Product, error) {
	var p model.Product
	err := row.Scan(&p.ID, &p.SKU, &p.Slug, &p.Name, &p.Description, &p.CategoryID, &p.BrandID,
		&p.Price.Amount, &p.Cost.Amount, &p.Price.Currency, &p.Status, &p.Attributes,
		&p.Popularity, &p.Rating, &p.Version, &p.CreatedAt, &p.UpdatedAt)
	p.Cost.Currency = p.Price.Currency
	return &p, err
}

func queryProducts(ctx context.Context, q querier, sql string, args ...any) ([]*model.Product, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanProduct)
}

const productsByIDsSQL = `SELECT ` + productColumns + ` FROM products WHERE id = ANY($1::uuid[])`

// ProductsByIDs returns the products with these ids, in no particular order; unknown ids are
// left out.
func (s *Store) ProductsByIDs(ctx context.Context, ids []string) ([]*model.Product, error) {
	ps, err := queryProducts(ctx, s.read(ctx), productsByIDsSQL, uuidArray(ids))
	if err != nil {
		return nil, fmt.Errorf("products by ids: %w", err)
	}
	return ps, nil
}

const (
	productsBySKUsSQL  = `SELECT ` + productColumns + ` FROM products WHERE sku = ANY($1::text[])`
	productsBySlugsSQL = `SELECT ` + productColumns + ` FROM products WHERE slug = ANY($1::text[])`
)

// ProductsBySKUs returns the products with these skus, in no particular order; unknown skus
// are left out.
func (s *Store) ProductsBySKUs(ctx context.Context, skus []string) ([]*model.Product, error) {
	ps, err := queryProducts(ctx, s.read(ctx), productsBySKUsSQL, skus)
	if err != nil {
		return nil, fmt.Errorf("products by skus: %w", err)
	}
	return ps, nil
}

// ProductsBySlugs returns the products with these slugs, in no particular order; unknown
// slugs are left out.
func (s *Store) ProductsBySlugs(ctx context.Context, slugs []string) ([]*model.Product, error) {
	ps, err := queryProducts(ctx, s.read(ctx), productsBySlugsSQL, slugs)
	if err != nil {
		return nil, fmt.Errorf("products by slugs: %w", err)
	}
	return ps, nil
}

// ListProducts returns one keyset page of the products that match f, in the order of sort.
func (s *Store) ListProducts(ctx context.Context, f model.ProductFilter, sort model.ProductSort, page model.Page) (*model.ProductConnection, error) {
	key, ok := sortKeys[sort]
	if !ok {
		return nil, model.InvalidArgument("sort", "unknown sort %q", sort)
	}
	var a args
	conds := filterConditions(&a, f)
	if page.Cursor != "" {
		c, err := decodeCursor(page.Cursor, sort)
		if err != nil {
			return nil, err.withArgument(page)
		}
		conds = append(conds, key.seek(&a, c, page.Backward))
	}
	sql := `SELECT ` + productColumns + ` FROM products p` + and(conds) +
		` ORDER BY ` + key.orderBy(page.Backward) + ` LIMIT ` + a.add(page.Limit+1)
	ps, err := queryProducts(ctx, s.read(ctx), sql, a.forFilter(f)...)
	if err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return connection(ps, f, sort, page), nil
}

// connection makes the page of products with their cursors.
func connection(ps []*model.Product, f model.ProductFilter, sort model.ProductSort, page model.Page) *model.ProductConnection {
	ps, info := trimPage(ps, page)
	conn := &model.ProductConnection{Edges: make([]*model.ProductEdge, len(ps)), Filter: f, PageInfo: info}
	for i, p := range ps {
		conn.Edges[i] = &model.ProductEdge{Cursor: encodeCursor(sort, p), Node: p}
	}
	if len(ps) > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[len(ps)-1].Cursor
	}
	return conn
}

// CountProducts counts the products that match f.
func (s *Store) CountProducts(ctx context.Context, f model.ProductFilter) (int, error) {
	var a args
	var n int
	conds := filterConditions(&a, f)
	err := s.read(ctx).QueryRow(ctx, `SELECT count(*) FROM products p`+and(conds), a.forFilter(f)...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count products: %w", err)
	}
	return n, nil
}

// forFilter returns the arguments of a listing. A filter whose best plan depends on its
// values (a category subtree, a price range, brands, attributes) goes through the simple
// protocol so that it is planned with them every time; the unfiltered listing, the one most
// asked for, keeps its prepared generic plan (see db.Open).
func (a args) forFilter(f model.ProductFilter) []any {
	if f.CategoryID == nil && f.MinPrice == nil && f.MaxPrice == nil && len(f.BrandIDs) == 0 && len(f.Attributes) == 0 {
		return a
	}
	return append([]any{pgx.QueryExecModeSimpleProtocol}, a...)
}

// filterConditions turns f into SQL conditions on products p. Statuses are validated enum
// values written as literals, so that the planner can use the partial indexes on active
// products even with a generic plan.
func filterConditions(a *args, f model.ProductFilter) []string {
	var conds []string
	if f.CategoryID != nil {
		conds = append(conds, `p.category_id IN (SELECT id FROM categories WHERE path @> ARRAY[`+a.add(*f.CategoryID)+`::uuid])`)
	}
	if len(f.BrandIDs) > 0 {
		conds = append(conds, `p.brand_id = ANY(`+a.add(uuidArray(f.BrandIDs))+`::uuid[])`)
	}
	if f.MinPrice != nil {
		conds = append(conds, `p.price_cents >= `+a.add(int64(*f.MinPrice)))
	}
	if f.MaxPrice != nil {
		conds = append(conds, `p.price_cents <= `+a.add(int64(*f.MaxPrice)))
	}
	if len(f.Status) > 0 {
		lits := []string{"NULL"} // IN (NULL) matches nothing: an empty list is not valid SQL
		for _, st := range f.Status {
			if st.IsValid() {
				lits = append(lits, "'"+string(st)+"'")
			}
		}
		conds = append(conds, `p.status IN (`+strings.Join(lits, ", ")+`)`)
	}
	if len(f.Attributes) > 0 {
		// As JSON text: the simple protocol that listings use has no encoder for a map.
		attrs, _ := json.Marshal(f.Attributes)
		conds = append(conds, `p.attributes @> `+a.add(string(attrs))+`::jsonb`)
	}
	return conds
}

// createProductSQL inserts a product; the trigger fills search_vector.
var createProductSQL = withOutbox("product", "product.created", `
    INSERT INTO products (sku, slug, name, description, category_id, brand_id, price_cents, cost_cents, status, attributes)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::product_status, $10)
    RETURNING *`, productColumns)

// CreateProduct inserts a validated product with raw ids.
func (s *Store) CreateProduct(ctx context.Context, in model.CreateProductInput) (*model.Product, error) {
	attrs := in.Attributes
	if attrs == nil {
		attrs = map[string]any{}
	}
	ps, err := queryProducts(ctx, s.pool, createProductSQL, in.Sku, *in.Slug, in.Name, deref(in.Description),
		in.CategoryID, in.BrandID, int64(in.Price), int64(derefCents(in.Cost)), *in.Status, attrs)
	if err != nil {
		return nil, translate(err, "create product")
	}
	return ps[0], nil
}

// updateProductSQL changes only the fields given (NULL keeps the old value) and bumps the
// version, unless an expected version is given and differs.
var updateProductSQL = withOutbox("product", "product.updated", `
    UPDATE products SET
        sku = coalesce($2, sku), slug = coalesce($3, slug), name = coalesce($4, name),
        description = coalesce($5, description), category_id = coalesce($6, category_id),
        brand_id = coalesce($7, brand_id), price_cents = coalesce($8, price_cents),
        cost_cents = coalesce($9, cost_cents), status = coalesce($10::text::product_status, status),
        attributes = coalesce($11, attributes), version = version + 1, updated_at = now()
    WHERE id = $1 AND ($12::bigint IS NULL OR version = $12)
    RETURNING *`, productColumns)

// UpdateProduct applies a validated partial update with raw ids. It answers NOT_FOUND for an
// unknown product and CONFLICT when ExpectedVersion is stale.
func (s *Store) UpdateProduct(ctx context.Context, id string, in model.UpdateProductInput) (*model.Product, error) {
	var attrs any
	if in.Attributes != nil {
		attrs = in.Attributes
	}
	ps, err := queryProducts(ctx, s.pool, updateProductSQL, id, in.Sku, in.Slug, in.Name, in.Description,
		in.CategoryID, in.BrandID, centsPtr(in.Price), centsPtr(in.Cost), in.Status, attrs, in.ExpectedVersion)
	if err != nil {
		return nil, translate(err, "update product")
	}
	if len(ps) == 0 {
		return nil, s.missingOrStale(ctx, id)
	}
	return ps[0], nil
}

var archiveProductSQL = withOutbox("product", "product.archived", `
    UPDATE products SET status = 'ARCHIVED', version = version + 1, updated_at = now()
    WHERE id = $1 RETURNING *`, productColumns)

// ArchiveProduct takes a product off the storefront; it stays for orders and history.
func (s *Store) ArchiveProduct(ctx context.Context, id string) (*model.Product, error) {
	ps, err := queryProducts(ctx, s.pool, archiveProductSQL, id)
	if err != nil {
		return nil, translate(err, "archive product")
	}
	if len(ps) == 0 {
		return nil, model.NotFound("product")
	}
	return ps[0], nil
}

// missingOrStale explains why a conditional update changed no row.
func (s *Store) missingOrStale(ctx context.Context, id string) error {
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM products WHERE id = $1`, id).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return model.NotFound("product")
	}
	if err != nil {
		return fmt.Errorf("update product: %w", err)
	}
	return &model.Error{Code: model.CodeConflict, Argument: "input.expectedVersion",
		Message: fmt.Sprintf("the product changed meanwhile: it is at version %d", version)}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func derefCents(c *model.Cents) model.Cents {
	if c == nil {
		return 0
	}
	return *c
}

// centsPtr passes an optional amount as a nullable bigint.
func centsPtr(c *model.Cents) *int64 {
	if c == nil {
		return nil
	}
	v := int64(*c)
	return &v
}
