package indexer

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/search/elastic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// documentSelect reads documents. Attribute values are the text jsonb ->> gives (the way
// the PostgreSQL engine compares them), arrays and objects left out; the category facet
// lists the path's categories root first.
const documentSelect = `
SELECT p.id::text AS product_id, p.name, p.description,
       coalesce(b.name, '') AS brand, coalesce(p.brand_id::text, '') AS brand_id,
       c.name AS category, p.category_id::text AS category_id, c.path::text[] AS category_path,
       ARRAY(SELECT a.id::text || '|' || a.name FROM categories a
              WHERE a.id = ANY (c.path) ORDER BY array_position(c.path, a.id)) AS category_facet,
       p.price_cents, p.cost_cents, p.rating::float8 AS rating, p.popularity::bigint AS popularity,
       (extract(epoch FROM p.created_at) * 1000000)::bigint AS created_us,
       p.status::text AS status, p.version,
       (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}')
          FROM jsonb_each_text(p.attributes) e
         WHERE jsonb_typeof(p.attributes -> e.key) IN ('string', 'number', 'boolean')) AS attrs
  FROM products p
  JOIN categories c ON c.id = p.category_id
  LEFT JOIN brands b ON b.id = p.brand_id`

const (
	documentsByIDsSQL = documentSelect + `
 WHERE p.id = ANY ($1::uuid[])`
	documentsAfterSQL = documentSelect + `
 WHERE p.id > $1::uuid
 ORDER BY p.id
 LIMIT $2`
	versionsAfterSQL = `SELECT id::text, version FROM products WHERE id > $1::uuid ORDER BY id LIMIT $2`
	// productsInCategorySQL finds the products a renamed or moved category shows up in:
	// those of the category and of its descendants.
	productsInCategorySQL = `
SELECT p.id::text FROM products p JOIN categories c ON c.id = p.category_id WHERE c.path && $1::uuid[]`
	productsOfBrandSQL = `SELECT id::text FROM products WHERE brand_id = ANY ($1::uuid[])`
)

// docRow is a row of documentSelect.
type docRow struct {
	ProductID     string            `db:"product_id"`
	Name          string            `db:"name"`
	Description   string            `db:"description"`
	Brand         string            `db:"brand"`
	BrandID       string            `db:"brand_id"`
	Category      string            `db:"category"`
	CategoryID    string            `db:"category_id"`
	CategoryPath  []string          `db:"category_path"`
	CategoryFacet []string          `db:"category_facet"`
	PriceCents    int64             `db:"price_cents"`
	CostCents     int64             `db:"cost_cents"`
	Rating        float64           `db:"rating"`
	Popularity    int64             `db:"popularity"`
	CreatedUS     int64             `db:"created_us"`
	Status        string            `db:"status"`
	Version       int64             `db:"version"`
	Attrs         map[string]string `db:"attrs"`
}

func (r docRow) document() *elastic.Document {
	d := &elastic.Document{
		ProductID: r.ProductID, Name: r.Name, Description: r.Description, Suggest: suggestInputs(r.Name),
		Brand: r.Brand, BrandID: r.BrandID, Category: r.Category, CategoryID: r.CategoryID,
		CategoryPath: r.CategoryPath, CategoryFacet: r.CategoryFacet,
		PriceCents: r.PriceCents, CostCents: r.CostCents, Rating: r.Rating, Popularity: r.Popularity,
		CreatedUS: r.CreatedUS, Status: r.Status, Version: r.Version, Attrs: r.Attrs,
		AttrKeys: make([]string, 0, len(r.Attrs)),
	}
	if r.BrandID != "" {
		d.BrandFacet = r.BrandID + "|" + r.Brand
	}
	if r.PriceCents > 0 && r.PriceCents > r.CostCents {
		d.Margin = float64(r.PriceCents-r.CostCents) / float64(r.PriceCents)
	}
	for k := range r.Attrs {
		d.AttrKeys = append(d.AttrKeys, k)
	}
	return d
}

// suggestInputs returns the lowercase name from the start of each word: from its first
// character and after every character that is not a letter or digit, the boundaries at
// which the PostgreSQL engine's suggestions match too.
func suggestInputs(name string) []string {
	lower := []rune(strings.ToLower(name))
	var out []string
	for i, r := range lower {
		if unicode.IsSpace(r) || (i > 0 && isAlnum(lower[i-1])) {
			continue
		}
		out = append(out, string(lower[i:]))
	}
	return out
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// LoadDocuments returns the documents of the products with these ids, whatever their
// status, in no particular order; ids of products that do not exist are left out.
func LoadDocuments(ctx context.Context, pool *pgxpool.Pool, ids []string) ([]*elastic.Document, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	return queryDocuments(ctx, pool, documentsByIDsSQL, db.UUIDs(ids))
}

// loadDocumentsAfter returns up to limit documents with ids above after, by id: a keyset
// page of the whole catalog.
func loadDocumentsAfter(ctx context.Context, pool *pgxpool.Pool, after string, limit int) ([]*elastic.Document, error) {
	return queryDocuments(ctx, pool, documentsAfterSQL, db.UUID(orMinUUID(after)), limit)
}

func queryDocuments(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) ([]*elastic.Document, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("load search documents: %w", err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByName[docRow])
	if err != nil {
		return nil, fmt.Errorf("load search documents: %w", err)
	}
	out := make([]*elastic.Document, len(got))
	for i, r := range got {
		out[i] = r.document()
	}
	return out, nil
}

// StreamVersions calls fn with every product's id and version, by id, in keyset pages of
// batch rows; it stops at the first error fn returns.
func StreamVersions(ctx context.Context, pool *pgxpool.Pool, batch int, fn func([]elastic.IDVersion) error) error {
	after := ""
	for {
		rows, err := pool.Query(ctx, versionsAfterSQL, db.UUID(orMinUUID(after)), batch)
		if err != nil {
			return fmt.Errorf("stream product versions: %w", err)
		}
		page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[elastic.IDVersion])
		if err != nil {
			return fmt.Errorf("stream product versions: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < batch {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// productsOf returns the ids of the products whose documents show one of the categories
// (or a descendant) or brands.
func productsOf(ctx context.Context, pool *pgxpool.Pool, categoryIDs, brandIDs []string) ([]string, error) {
	var out []string
	for _, q := range []struct {
		sql string
		ids []string
	}{{productsInCategorySQL, categoryIDs}, {productsOfBrandSQL, brandIDs}} {
		if len(q.ids) == 0 {
			continue
		}
		rows, err := pool.Query(ctx, q.sql, db.UUIDs(q.ids))
		if err != nil {
			return nil, fmt.Errorf("products to refresh: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("products to refresh: %w", err)
		}
		out = append(out, ids...)
	}
	return out, nil
}

// orMinUUID is the keyset start: "" means before every id.
func orMinUUID(after string) string {
	if after == "" {
		return "00000000-0000-0000-0000-000000000000"
	}
	return after
}
