package resolvers

import (
	"context"

	"github.com/homegoods/storefront/graph/model"
)

// Analytics answers sales reports from the rollups.
type Analytics interface {
	SalesReport(ctx context.Context, q model.SalesQuery) (*model.SalesReport, error)
	TopProducts(ctx context.Context, q model.TopProductsQuery) ([]model.ProductSales, error)
}

// SalesTicker streams running sales figures until ctx ends, when the channel is closed.
type SalesTicker interface {
	Subscribe(ctx context.Context) <-chan *model.SalesTick
}

// salesFilter decodes the global ids of a sales filter.
func salesFilter(in *model.SalesFilter) (model.SalesFilter, error) {
	if in == nil {
		return model.SalesFilter{}, nil
	}
	var f model.SalesFilter
	var err error
	if f.CategoryIDs, err = decodeIDs("filter.categoryIds", model.TypeCategory, in.CategoryIDs); err != nil {
		return f, err
	}
	if f.BrandIDs, err = decodeIDs("filter.brandIds", model.TypeBrand, in.BrandIDs); err != nil {
		return f, err
	}
	f.ProductIDs, err = decodeIDs("filter.productIds", model.TypeProduct, in.ProductIDs)
	return f, err
}

// seriesGroup returns the id of the series' group when the report is grouped by want.
func seriesGroup(s *model.GroupedSeries, want model.SalesGroupBy) string {
	if s.GroupBy != want {
		return ""
	}
	return s.GroupID
}
