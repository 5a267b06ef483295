package cache

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
)

// CatalogSource is the store behind the catalog cache: the loads by key of the dataloaders.
type CatalogSource interface {
	ProductsByIDs(ctx context.Context, ids []string) ([]*model.Product, error)
	CategoriesByIDs(ctx context.Context, ids []string) ([]*model.Category, error)
	BrandsByIDs(ctx context.Context, ids []string) ([]*model.Brand, error)
	Availability(ctx context.Context, productIDs []string) (map[string]*model.Availability, error)
}

// Catalog serves the dataloaders' loads by key through read-through caches, and keeps them
// current from the outbox: its Invalidate is the cache consumer's relay handler.
type Catalog struct {
	products     *ReadThrough[*model.Product]
	categories   *ReadThrough[*model.Category]
	brands       *ReadThrough[*model.Brand]
	availability *ReadThrough[*model.Availability]
}

// NewCatalog returns the catalog cache on bus in front of src.
func NewCatalog(bus *Bus, src CatalogSource, opts ReadThroughOptions) *Catalog {
	return &Catalog{
		products:     NewReadThrough(bus, "product", byID(src.ProductsByIDs, func(p *model.Product) string { return p.ID }), opts),
		categories:   NewReadThrough(bus, "category", byID(src.CategoriesByIDs, func(c *model.Category) string { return c.ID }), opts),
		brands:       NewReadThrough(bus, "brand", byID(src.BrandsByIDs, func(b *model.Brand) string { return b.ID }), opts),
		availability: NewReadThrough(bus, "availability", src.Availability, opts),
	}
}

// byID adapts a store load that returns a slice into a LoadFunc.
func byID[T any](load func(context.Context, []string) ([]T, error), id func(T) string) LoadFunc[T] {
	return func(ctx context.Context, ids []string) (map[string]T, error) {
		vals, err := load(ctx, ids)
		if err != nil {
			return nil, err
		}
		out := make(map[string]T, len(vals))
		for _, v := range vals {
			out[id(v)] = v
		}
		return out, nil
	}
}

// ProductsByIDs returns the products with these ids, in no particular order.
func (c *Catalog) ProductsByIDs(ctx context.Context, ids []string) ([]*model.Product, error) {
	return values(c.products.GetMany(ctx, ids))
}

// CategoriesByIDs returns the categories with these ids, in no particular order.
func (c *Catalog) CategoriesByIDs(ctx context.Context, ids []string) ([]*model.Category, error) {
	return values(c.categories.GetMany(ctx, ids))
}

// BrandsByIDs returns the brands with these ids, in no particular order.
func (c *Catalog) BrandsByIDs(ctx context.Context, ids []string) ([]*model.Brand, error) {
	return values(c.brands.GetMany(ctx, ids))
}

// Availability returns the stock available of each product id that has stock rows.
func (c *Catalog) Availability(ctx context.Context, productIDs []string) (map[string]*model.Availability, error) {
	return c.availability.GetMany(ctx, productIDs)
}

// PeekProduct returns the product with id if the in-process tier holds it.
func (c *Catalog) PeekProduct(id string) (*model.Product, bool) { return c.products.Peek(id) }

// PeekCategory returns the category with id if the in-process tier holds it.
func (c *Catalog) PeekCategory(id string) (*model.Category, bool) { return c.categories.Peek(id) }

// PeekBrand returns the brand with id if the in-process tier holds it.
func (c *Catalog) PeekBrand(id string) (*model.Brand, bool) { return c.brands.Peek(id) }

// PeekAvailability returns the availability of a product if the in-process tier holds it.
func (c *Catalog) PeekAvailability(id string) (*model.Availability, bool) {
	return c.availability.Peek(id)
}

func values[T any](m map[string]T, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return slices.Collect(maps.Values(m)), nil
}

// Invalidate drops the cached entries that committed changes made stale, on every server
// instance: it is the relay handler of the cache's outbox consumer. Each aggregate's id
// names exactly the keys it stales: a product's row, a category's, a brand's, and for stock
// changes (aggregate "inventory", id = the product) the product's availability.
func (c *Catalog) Invalidate(ctx context.Context, events []model.OutboxEvent) error {
	stale := map[string][]string{}
	for _, e := range events {
		stale[e.Aggregate] = append(stale[e.Aggregate], e.AggregateID)
	}
	for aggregate, ids := range stale {
		var err error
		switch aggregate {
		case "product":
			err = c.products.Invalidate(ctx, ids...)
		case "category":
			err = c.categories.Invalidate(ctx, ids...)
		case "brand":
			err = c.brands.Invalidate(ctx, ids...)
		case "inventory":
			err = c.availability.Invalidate(ctx, ids...)
		}
		if err != nil {
			return fmt.Errorf("invalidate %s: %w", aggregate, err)
		}
	}
	return nil
}

// Stats returns the counters of each of the catalog's keyspaces.
func (c *Catalog) Stats() map[string]ReadThroughStats {
	return map[string]ReadThroughStats{
		"product": c.products.Stats(), "category": c.categories.Stats(),
		"brand": c.brands.Stats(), "availability": c.availability.Stats(),
	}
}

// CacheConsumer names the cache's consumer of the change feed.
const CacheConsumer = "cache"

// Consumer is the cache's reader of the change feed: Invalidate on every event. It needs
// no resync after missing events: entries live at most CACHE_TTL, and the feed retires a
// consumer only after a longer time without a relay, so what it missed has expired.
func (c *Catalog) Consumer() feed.Consumer {
	return feed.Consumer{Name: CacheConsumer, Handle: c.Invalidate}
}
