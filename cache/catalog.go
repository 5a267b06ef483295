package cache

import (
	"context"
	"encoding/json"
	"errors"
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
	ProductsBySKUs(ctx context.Context, skus []string) ([]*model.Product, error)
	ProductsBySlugs(ctx context.Context, slugs []string) ([]*model.Product, error)
}

// Catalog serves the dataloaders' loads by key through read-through caches, and keeps them
// current from the outbox: its Invalidate is the cache consumer's relay handler.
//
// Products are also found by sku and by slug (what storefront URLs hold) through two small
// indexes from those keys to product ids. An index entry is a hint, checked against the
// cached product itself: a product whose sku or slug has changed since is not returned for
// the old one, and the stale entry is dropped (an outbox event names the new keys only).
type Catalog struct {
	bus          *Bus
	products     *ReadThrough[*model.Product]
	categories   *ReadThrough[*model.Category]
	brands       *ReadThrough[*model.Brand]
	availability *ReadThrough[*model.Availability]
	skus, slugs  *ReadThrough[string] // product ids by sku and by slug
}

// NewCatalog returns the catalog cache on bus in front of src.
func NewCatalog(bus *Bus, src CatalogSource, opts ReadThroughOptions) *Catalog {
	return &Catalog{
		bus:          bus,
		products:     NewReadThrough(bus, "product", byID(src.ProductsByIDs, func(p *model.Product) string { return p.ID }), opts),
		categories:   NewReadThrough(bus, "category", byID(src.CategoriesByIDs, func(c *model.Category) string { return c.ID }), opts),
		brands:       NewReadThrough(bus, "brand", byID(src.BrandsByIDs, func(b *model.Brand) string { return b.ID }), opts),
		availability: NewReadThrough(bus, "availability", src.Availability, opts),
		skus:         NewReadThrough(bus, "product_sku", productIDs(src.ProductsBySKUs, func(p *model.Product) string { return p.SKU }), opts),
		slugs:        NewReadThrough(bus, "product_slug", productIDs(src.ProductsBySlugs, func(p *model.Product) string { return p.Slug }), opts),
	}
}

// productIDs adapts a store load of products by another key into a LoadFunc of their ids.
func productIDs(load func(context.Context, []string) ([]*model.Product, error), key func(*model.Product) string) LoadFunc[string] {
	return func(ctx context.Context, keys []string) (map[string]string, error) {
		ps, err := load(ctx, keys)
		if err != nil {
			return nil, err
		}
		out := make(map[string]string, len(ps))
		for _, p := range ps {
			out[key(p)] = p.ID
		}
		return out, nil
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

// ProductsBySKUs returns the products with these skus, in no particular order.
func (c *Catalog) ProductsBySKUs(ctx context.Context, skus []string) ([]*model.Product, error) {
	return c.productsBy(ctx, c.skus, skus, func(p *model.Product) string { return p.SKU })
}

// ProductsBySlugs returns the products with these slugs, in no particular order.
func (c *Catalog) ProductsBySlugs(ctx context.Context, slugs []string) ([]*model.Product, error) {
	return c.productsBy(ctx, c.slugs, slugs, func(p *model.Product) string { return p.Slug })
}

// productsBy finds products by the keys of index, whose entries key(product) must confirm.
// Keys whose entry the product no longer confirms are dropped from the index and looked up
// once more, which then reads PostgreSQL.
func (c *Catalog) productsBy(ctx context.Context, index *ReadThrough[string], keys []string, key func(*model.Product) string) ([]*model.Product, error) {
	var out []*model.Product
	for attempt := 0; attempt < 2 && len(keys) > 0; attempt++ {
		ids, err := index.GetMany(ctx, keys)
		if err != nil {
			return nil, err
		}
		ps, err := c.products.GetMany(ctx, slices.Collect(maps.Values(ids)))
		if err != nil {
			return nil, err
		}
		var stale []string
		for k, id := range ids {
			if p, ok := ps[id]; ok && key(p) == k {
				out = append(out, p)
			} else {
				stale = append(stale, k)
			}
		}
		if err := index.Invalidate(ctx, stale...); err != nil {
			return nil, err
		}
		keys = stale
	}
	return out, nil
}

// PeekProductBySKU returns the product with sku if the in-process tier holds it.
func (c *Catalog) PeekProductBySKU(sku string) (*model.Product, bool) {
	return c.peekBy(c.skus, sku, func(p *model.Product) string { return p.SKU })
}

// PeekProductBySlug returns the product with slug if the in-process tier holds it.
func (c *Catalog) PeekProductBySlug(slug string) (*model.Product, bool) {
	return c.peekBy(c.slugs, slug, func(p *model.Product) string { return p.Slug })
}

func (c *Catalog) peekBy(index *ReadThrough[string], k string, key func(*model.Product) string) (*model.Product, bool) {
	id, ok := index.Peek(k)
	if !ok {
		return nil, false
	}
	p, ok := c.products.Peek(id)
	return p, ok && key(p) == k
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

// memoAggregates are the aggregates whose changes reach search results and listings.
var memoAggregates = []string{"product", "category", "brand", "search"}

// Invalidate drops the cached entries that committed changes made stale, on every server
// instance: it is the relay handler of the cache's outbox consumer. Each aggregate's id
// names exactly the keys it stales: a product's row, a category's, a brand's, and for stock
// changes (aggregate "inventory", id = the product) the product's availability. Changes of
// products, categories, brands and the relevance controls (aggregate "search") also empty
// the memos of derived answers (Announce).
func (c *Catalog) Invalidate(ctx context.Context, events []model.OutboxEvent) error {
	stale := map[string][]string{}
	announce := false
	for _, e := range events {
		stale[e.Aggregate] = append(stale[e.Aggregate], e.AggregateID)
		announce = announce || slices.Contains(memoAggregates, e.Aggregate)
	}
	for aggregate, ids := range stale {
		var err error
		switch aggregate {
		case "product":
			err = c.invalidateProducts(ctx, ids, events)
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
	if announce {
		if err := c.bus.Announce(ctx); err != nil {
			return fmt.Errorf("announce catalog change: %w", err)
		}
	}
	return nil
}

// invalidateProducts drops the changed products and the index entries of their new skus
// and slugs, which may hold a cached "not found". Entries of the old ones are caught when
// read (see productsBy).
func (c *Catalog) invalidateProducts(ctx context.Context, ids []string, events []model.OutboxEvent) error {
	var skus, slugs []string
	for _, e := range events {
		var row struct{ SKU, Slug string }
		if e.Aggregate != "product" || json.Unmarshal(e.Payload, &row) != nil {
			continue
		}
		if row.SKU != "" {
			skus = append(skus, row.SKU)
		}
		if row.Slug != "" {
			slugs = append(slugs, row.Slug)
		}
	}
	return errors.Join(c.products.Invalidate(ctx, ids...), c.skus.Invalidate(ctx, skus...), c.slugs.Invalidate(ctx, slugs...))
}

// Stats returns the counters of each of the catalog's keyspaces.
func (c *Catalog) Stats() map[string]ReadThroughStats {
	return map[string]ReadThroughStats{
		"product": c.products.Stats(), "category": c.categories.Stats(),
		"brand": c.brands.Stats(), "availability": c.availability.Stats(),
		"product_sku": c.skus.Stats(), "product_slug": c.slugs.Stats(),
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
