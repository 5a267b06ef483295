package resolvers

import (
	"context"

	"github.com/homegoods/storefront/graph/model"
)

// Rankings answers which products sell best and which are trending, per category.
type Rankings interface {
	// Bestsellers and Trending return up to n products, best first; categoryID "" ranks
	// the whole catalog.
	Bestsellers(ctx context.Context, categoryID string, n int) ([]model.Ranked, error)
	Trending(ctx context.Context, categoryID string, n int) ([]model.Ranked, error)
}

// ranked resolves a ranking into visible products through the product loader. It asks the
// ranking for a few more ids than wanted, since some may have been archived meanwhile.
func (r *queryResolver) ranked(ctx context.Context, rank func(context.Context, string, int) ([]model.Ranked, error), categoryID *string, first *int) ([]*model.Product, error) {
	n, err := pageSize("first", first)
	if err != nil {
		return nil, err
	}
	category, err := decodeOptionalID("categoryId", model.TypeCategory, categoryID)
	if err != nil {
		return nil, err
	}
	ranking, err := rank(ctx, deref(category), n+n/2+2)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ranking))
	for i, r := range ranking {
		ids[i] = r.ProductID
	}
	products, errs := loaders(ctx).Product.GetMany(ctx, ids)
	out := make([]*model.Product, 0, n)
	for i, p := range products {
		if errs != nil && errs[i] != nil {
			if model.ErrorCodeOf(errs[i]) == model.CodeNotFound {
				continue // deleted since it sold: the ranking catches up by itself
			}
			return nil, errs[i]
		}
		if p.Status == model.ProductStatusActive && len(out) < n {
			out = append(out, p)
		}
	}
	return out, nil
}
