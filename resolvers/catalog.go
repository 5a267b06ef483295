package resolvers

import (
	"context"

	"github.com/homegoods/storefront/graph/model"
)

// visible reports whether the caller may see p: the storefront shows active products only,
// merchandisers see every product.
func visible(ctx context.Context, p *model.Product) bool {
	return p.Status == model.ProductStatusActive || isMerchandiser(ctx)
}

// findProduct looks a product up by exactly one of id, sku and slug.
func (r *queryResolver) findProduct(ctx context.Context, id, sku, slug *string) (*model.Product, error) {
	given := 0
	for _, s := range []*string{id, sku, slug} {
		if s != nil {
			given++
		}
	}
	if given != 1 {
		return nil, model.InvalidArgument("id", "give exactly one of id, sku and slug")
	}
	switch {
	case id != nil:
		productID, err := decodeID("id", model.TypeProduct, *id)
		if err != nil {
			return nil, err
		}
		return loaders(ctx).Product.Get(ctx, productID)
	case sku != nil:
		return loaders(ctx).ProductBySKU.Get(ctx, *sku)
	default:
		return loaders(ctx).ProductBySlug.Get(ctx, *slug)
	}
}

// node loads any object by global id given as argument arg.
func (r *queryResolver) node(ctx context.Context, arg, gid string) (model.Node, error) {
	typ, id, ok := model.ParseGlobalID(gid)
	if !ok {
		return nil, model.InvalidArgument(arg, "malformed id %q", gid)
	}
	l := loaders(ctx)
	switch typ {
	case model.TypeProduct:
		p, err := l.Product.Get(ctx, id)
		if err == nil && !visible(ctx, p) {
			return nil, model.NotFound("product")
		}
		return p, err
	case model.TypeCategory:
		return l.Category.Get(ctx, id)
	case model.TypeBrand:
		return l.Brand.Get(ctx, id)
	case model.TypeWarehouse:
		if err := requireRole(ctx, model.RoleMerchandiser); err != nil {
			return nil, err
		}
		return l.Warehouse.Get(ctx, id)
	}
	return nil, model.InvalidArgument(arg, "id %q names an unknown type", gid)
}

// pageArgs checks Relay pagination arguments: one direction at a time, at most MaxPageSize.
func pageArgs(first *int, after *string, last *int, before *string) (model.Page, error) {
	switch {
	case first != nil && last != nil:
		return model.Page{}, model.InvalidArgument("last", "give first or last, not both")
	case first != nil && before != nil:
		return model.Page{}, model.InvalidArgument("before", "before goes with last; use after with first")
	case last != nil && after != nil:
		return model.Page{}, model.InvalidArgument("after", "after goes with first; use before with last")
	}
	if last != nil || before != nil {
		n, err := pageSize("last", last)
		return model.Page{Limit: n, Cursor: deref(before), Backward: true}, err
	}
	n, err := pageSize("first", first)
	return model.Page{Limit: n, Cursor: deref(after)}, err
}

func pageSize(arg string, n *int) (int, error) {
	if n == nil {
		return model.DefaultPageSize, nil
	}
	if *n < 0 || *n > model.MaxPageSize {
		return 0, model.InvalidArgument(arg, "%s must be between 0 and %d", arg, model.MaxPageSize)
	}
	return *n, nil
}

// storeFilter checks a product filter and decodes its global ids. Callers other than
// merchandisers see active products only.
func storeFilter(ctx context.Context, in *model.ProductFilter) (model.ProductFilter, error) {
	var f model.ProductFilter
	if in != nil {
		f = *in
	}
	var err error
	if f.CategoryID, err = decodeOptionalID("filter.categoryId", model.TypeCategory, f.CategoryID); err != nil {
		return f, err
	}
	if f.BrandIDs, err = decodeIDs("filter.brandIds", model.TypeBrand, f.BrandIDs); err != nil {
		return f, err
	}
	if err := checkPriceRange(f.MinPrice, f.MaxPrice); err != nil {
		return f, err
	}
	if err := model.CheckAttributes("filter.attributes", f.Attributes); err != nil {
		return f, err
	}
	if isMerchandiser(ctx) {
		return f, nil
	}
	for _, s := range f.Status {
		if s != model.ProductStatusActive {
			return f, &model.Error{Code: model.CodeForbidden, Message: "only merchandisers see products that are not active", Argument: "filter.status"}
		}
	}
	f.Status = []model.ProductStatus{model.ProductStatusActive}
	return f, nil
}

func checkPriceRange(lo, hi *model.Cents) error {
	switch {
	case lo != nil && *lo < 0:
		return model.InvalidArgument("filter.minPrice", "minPrice must not be negative")
	case hi != nil && *hi < 0:
		return model.InvalidArgument("filter.maxPrice", "maxPrice must not be negative")
	case lo != nil && hi != nil && *lo > *hi:
		return model.InvalidArgument("filter.maxPrice", "maxPrice must not be below minPrice")
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
