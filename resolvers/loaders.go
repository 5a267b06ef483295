package resolvers

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/graph-gophers/dataloader/v7"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/homegoods/storefront/graph/model"
)

// Loaders batch the loads of one response: every edge of the graph is one SQL statement per
// batch, whatever the number of parents.
type Loaders struct {
	Product       *loader[*model.Product]
	ProductBySKU  *loader[*model.Product]
	ProductBySlug *loader[*model.Product]
	Category      *loader[*model.Category]
	Brand         *loader[*model.Brand]
	Warehouse     *loader[*model.Warehouse]
	Children      *loader[[]*model.Category]
	ProductCount  *loader[int]
	Availability  *loader[*model.Availability]
	Inventory     *loader[[]*model.InventoryLevel]
}

// Peeker is implemented by batches that hold values in process memory (the cache's
// in-process tier): a load they answer skips the dataloaders' batch wait, which would
// otherwise be most of the latency of a request served from memory.
type Peeker interface {
	PeekProduct(id string) (*model.Product, bool)
	PeekProductBySKU(sku string) (*model.Product, bool)
	PeekProductBySlug(slug string) (*model.Product, bool)
	PeekCategory(id string) (*model.Category, bool)
	PeekBrand(id string) (*model.Brand, bool)
	PeekAvailability(id string) (*model.Availability, bool)
}

// loaderOptions are the settings every loader of a response shares.
type loaderOptions struct {
	wait   time.Duration // how long a loader collects keys before it runs its batch
	tracer trace.Tracer  // spans of batches; nil when tracing is off
}

// newLoaders builds the loaders of one response: the hot edges through b (the cache, when
// there is one), the others straight from the catalog.
func newLoaders(b Batches, c Catalog, o loaderOptions) *Loaders {
	l := &Loaders{
		Product:       newLoader(o, "product", byID(b.ProductsByIDs, func(p *model.Product) string { return p.ID }, "product")),
		ProductBySKU:  newLoader(o, "productBySku", byID(b.ProductsBySKUs, func(p *model.Product) string { return p.SKU }, "product")),
		ProductBySlug: newLoader(o, "productBySlug", byID(b.ProductsBySlugs, func(p *model.Product) string { return p.Slug }, "product")),
		Category:      newLoader(o, "category", byID(b.CategoriesByIDs, func(c *model.Category) string { return c.ID }, "category")),
		Brand:         newLoader(o, "brand", byID(b.BrandsByIDs, func(b *model.Brand) string { return b.ID }, "brand")),
		Warehouse:     newLoader(o, "warehouse", byID(c.WarehousesByIDs, func(w *model.Warehouse) string { return w.ID }, "warehouse")),
		Children:      newLoader(o, "children", grouped(c.ChildrenOf, func() []*model.Category { return []*model.Category{} })),
		ProductCount:  newLoader(o, "productCount", grouped(c.ProductCounts, func() int { return 0 })),
		Availability:  newLoader(o, "availability", grouped(b.Availability, func() *model.Availability { return &model.Availability{} })),
		Inventory:     newLoader(o, "inventory", grouped(c.Inventory, func() []*model.InventoryLevel { return []*model.InventoryLevel{} })),
	}
	if p, ok := b.(Peeker); ok {
		l.Product.peek, l.Category.peek, l.Brand.peek, l.Availability.peek = p.PeekProduct, p.PeekCategory, p.PeekBrand, p.PeekAvailability
		l.ProductBySKU.peek, l.ProductBySlug.peek = p.PeekProductBySKU, p.PeekProductBySlug
	}
	return l
}

// loader is a dataloader, made on first use (a response that is answered from memory, or
// that never reaches an edge, makes none), that may first look a key up in memory.
type loader[V any] struct {
	once sync.Once
	make func() *dataloader.Loader[string, V]
	dl   *dataloader.Loader[string, V]
	peek func(string) (V, bool)
}

// Get returns the value of key: from memory when the peek has it, else through the batch.
func (l *loader[V]) Get(ctx context.Context, key string) (V, error) {
	if l.peek != nil {
		if v, ok := l.peek(key); ok {
			return v, nil
		}
	}
	return l.batch().Load(ctx, key)()
}

// GetMany returns the values of keys in key order, with an error per key that has none.
// Only the keys that the peek does not have go through the batch.
func (l *loader[V]) GetMany(ctx context.Context, keys []string) ([]V, []error) {
	vals := make([]V, len(keys))
	var missing []int
	for i, k := range keys {
		var ok bool
		if l.peek != nil {
			vals[i], ok = l.peek(k)
		}
		if !ok {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return vals, nil
	}
	rest := make([]string, len(missing))
	for j, i := range missing {
		rest[j] = keys[i]
	}
	got, errs := l.batch().LoadMany(ctx, rest)()
	var out []error
	for j, i := range missing {
		vals[i] = got[j]
		if errs != nil && errs[j] != nil {
			if out == nil {
				out = make([]error, len(keys))
			}
			out[i] = errs[j]
		}
	}
	return vals, out
}

func (l *loader[V]) batch() *dataloader.Loader[string, V] {
	l.once.Do(func() { l.dl = l.make() })
	return l.dl
}

// newLoader makes a loader whose batches hold at most a page's worth of keys. The input
// channel is sized for one page too: the library's default of 1,000 slots is allocated for
// every batch, a cost that shows in profiles of a page of products.
func newLoader[V any](o loaderOptions, name string, fn dataloader.BatchFunc[string, V]) *loader[V] {
	return &loader[V]{make: func() *dataloader.Loader[string, V] {
		opts := []dataloader.Option[string, V]{dataloader.WithWait[string, V](o.wait),
			dataloader.WithBatchCapacity[string, V](500), dataloader.WithInputCapacity[string, V](model.MaxPageSize)}
		if o.tracer != nil {
			opts = append(opts, dataloader.WithTracer[string, V](batchTracer[V]{tracer: o.tracer, name: "dataloader " + name}))
		}
		return dataloader.NewBatchedLoader(fn, opts...)
	}}
}

// batchTracer gives each batch a span; single loads get none (a span per field would cost
// more than the load).
type batchTracer[V any] struct {
	dataloader.NoopTracer[string, V]
	tracer trace.Tracer
	name   string
}

func (b batchTracer[V]) TraceBatch(ctx context.Context, keys []string) (context.Context, dataloader.TraceBatchFinishFunc[V]) {
	ctx, span := b.tracer.Start(ctx, b.name, trace.WithAttributes(attribute.Int("dataloader.keys", len(keys))))
	return ctx, func([]*dataloader.Result[V]) { span.End() }
}

// byID adapts a store method that returns the objects found for some ids into a batch
// function: results in key order, NOT_FOUND for a key without an object.
func byID[V any](fetch func(context.Context, []string) ([]V, error), idOf func(V) string, kind string) dataloader.BatchFunc[string, V] {
	return func(ctx context.Context, keys []string) []*dataloader.Result[V] {
		found, err := fetch(ctx, keys)
		results := make([]*dataloader.Result[V], len(keys))
		if err != nil {
			for i := range results {
				results[i] = &dataloader.Result[V]{Error: err}
			}
			return results
		}
		byKey := make(map[string]V, len(found))
		for _, v := range found {
			byKey[idOf(v)] = v
		}
		for i, k := range keys {
			if v, ok := byKey[k]; ok {
				results[i] = &dataloader.Result[V]{Data: v}
			} else {
				results[i] = &dataloader.Result[V]{Error: model.NotFound(kind)}
			}
		}
		return results
	}
}

// grouped adapts a store method that returns a value per key into a batch function in key
// order; keys without a value get empty().
func grouped[V any](fetch func(context.Context, []string) (map[string]V, error), empty func() V) dataloader.BatchFunc[string, V] {
	return func(ctx context.Context, keys []string) []*dataloader.Result[V] {
		found, err := fetch(ctx, keys)
		results := make([]*dataloader.Result[V], len(keys))
		for i, k := range keys {
			v, ok := found[k]
			if !ok {
				v = empty()
			}
			results[i] = &dataloader.Result[V]{Data: v, Error: err}
		}
		return results
	}
}

// loaderScope gives every response fresh loaders: the one response of a query or mutation,
// and each event of a subscription, which lives too long for values loaded at its start to
// stay current. gqlgen resolves an event's fields with the context of its response.
type loaderScope struct {
	batches Batches
	catalog Catalog
	options loaderOptions
}

func (loaderScope) ExtensionName() string                   { return "Loaders" }
func (loaderScope) Validate(graphql.ExecutableSchema) error { return nil }

func (s loaderScope) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	return next(withLoaders(ctx, newLoaders(s.batches, s.catalog, s.options)))
}

type loadersKey struct{}

// withLoaders returns ctx carrying the response's loaders.
func withLoaders(ctx context.Context, l *Loaders) context.Context {
	return context.WithValue(ctx, loadersKey{}, l)
}

// loaders returns the loaders of the response in ctx.
func loaders(ctx context.Context) *Loaders {
	return ctx.Value(loadersKey{}).(*Loaders)
}
