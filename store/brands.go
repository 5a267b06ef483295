package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
)

const brandColumns = `id, slug, name, version, created_at, updated_at`

func queryBrands(ctx context.Context, q querier, sql string, args ...any) ([]*model.Brand, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[model.Brand])
}

const brandsByIDsSQL = `SELECT ` + brandColumns + ` FROM brands WHERE id = ANY($1::uuid[])`

// BrandsByIDs returns the brands with these ids, in no particular order.
func (s *Store) BrandsByIDs(ctx context.Context, ids []string) ([]*model.Brand, error) {
	bs, err := queryBrands(ctx, s.read(ctx), brandsByIDsSQL, uuidArray(ids))
	if err != nil {
		return nil, fmt.Errorf("brands by ids: %w", err)
	}
	return bs, nil
}

// Brands returns every brand by name.
func (s *Store) Brands(ctx context.Context) ([]*model.Brand, error) {
	bs, err := queryBrands(ctx, s.read(ctx), `SELECT `+brandColumns+` FROM brands ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("brands: %w", err)
	}
	return bs, nil
}

var createBrandSQL = withOutbox("brand", "brand.created", `
    INSERT INTO brands (slug, name) VALUES ($1, $2) RETURNING *`, brandColumns)

// CreateBrand inserts a validated brand.
func (s *Store) CreateBrand(ctx context.Context, in model.BrandInput) (*model.Brand, error) {
	bs, err := queryBrands(ctx, s.pool, createBrandSQL, *in.Slug, in.Name)
	if err != nil {
		return nil, translate(err, "create brand")
	}
	return bs[0], nil
}

var updateBrandSQL = withOutbox("brand", "brand.updated", `
    UPDATE brands SET slug = coalesce($2, slug), name = coalesce($3, name),
        version = version + 1, updated_at = now()
    WHERE id = $1 RETURNING *`, brandColumns)

// UpdateBrand changes the fields given.
func (s *Store) UpdateBrand(ctx context.Context, id string, in model.UpdateBrandInput) (*model.Brand, error) {
	bs, err := queryBrands(ctx, s.pool, updateBrandSQL, id, in.Slug, in.Name)
	if err != nil {
		return nil, translate(err, "update brand")
	}
	if len(bs) == 0 {
		return nil, model.NotFound("brand")
	}
	return bs[0], nil
}
