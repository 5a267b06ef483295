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
// batch, whatever the number of parents. They are one allocation per response (see
// loaderKinds); a loader makes its dataloader on first use.
type Loaders struct {
	Product       loader[*model.Product]
	ProductBySKU  loader[*model.Product]
	ProductBySlug loader[*model.Product]
	Category      loader[*model.Category]
	Brand         loader[*model.Brand]
	Warehouse     loader[*model.Warehouse]
	Children      loader[[]*model.Category]
	ProductCount  loader[int]
	Availability  loader[*model.Availability]
	Inventory     loader[[]*model.InventoryLevel]
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

// loaderKinds are what the loaders of every response share, made once per server: their
// batch functions, peeks and settings. Made per response, they were a twentieth of the
// allocations of a cached product page.
type loaderKinds struct {
	product, productBySKU, productBySlug kind[*model.Product]
	category                             kind[*model.Category]
	brand                                kind[*model.Brand]
	warehouse                            kind[*model.Warehouse]
	children                             kind[[]*model.Category]
	productCount                         kind[int]
	availability                         kind[*model.Availability]
	inventory                            kind[[]*model.InventoryLevel]
}

// kind is what the loaders of one edge share.
type kind[V any] struct {
	name    string
	fn      dataloader.BatchFunc[string, V]
	peek    func(string) (V, bool) // nil: every load goes through the batch
	options loaderOptions
}

// newLoaderKinds makes the loaders' kinds: the hot edges through b (the cache, when there
// is one), the others straight from the catalog.
func newLoaderKinds(b Batches, c Catalog, o loaderOptions) *loaderKinds {
	k := &loaderKinds{
		product:       kind[*model.Product]{"product", byID(b.ProductsByIDs, func(p *model.Product) string { return p.ID }, "product"), nil, o},
		productBySKU:  kind[*model.Product]{"productBySku", byID(b.ProductsBySKUs, func(p *model.Product) string { return p.SKU }, "product"), nil, o},
		productBySlug: kind[*model.Product]{"productBySlug", byID(b.ProductsBySlugs, func(p *model.Product) string { return p.Slug }, "product"), nil, o},
		category:      kind[*model.Category]{"category", byID(b.CategoriesByIDs, func(c *model.Category) string { return c.ID }, "category"), nil, o},
		brand:         kind[*model.Brand]{"brand", byID(b.BrandsByIDs, func(b *model.Brand) string { return b.ID }, "brand"), nil, o},
		warehouse:     kind[*model.Warehouse]{"warehouse", byID(c.WarehousesByIDs, func(w *model.Warehouse) string { return w.ID }, "warehouse"), nil, o},
		children:      kind[[]*model.Category]{"children", grouped(c.ChildrenOf, func() []*model.Category { return []*model.Category{} }), nil, o},
		productCount:  kind[int]{"productCount", grouped(c.ProductCounts, func() int { return 0 }), nil, o},
		availability:  kind[*model.Availability]{"availability", grouped(b.Availability, func() *model.Availability { return &model.Availability{} }), nil, o},
		inventory:     kind[[]*model.InventoryLevel]{"inventory", grouped(c.Inventory, func() []*model.InventoryLevel { return []*model.InventoryLevel{} }), nil, o},
	}
	if p, ok := b.(Peeker); ok {
		k.product.peek, k.category.peek, k.brand.peek, k.availability.peek = p.PeekProduct, p.PeekCategory, p.PeekBrand, p.PeekAvailability
		k.productBySKU.peek, k.productBySlug.peek = p.PeekProductBySKU, p.PeekProductBySlug
	}
	return k
}

// newLoaders makes the loaders of one response.
func newLoaders(k *loaderKinds) *Loaders {
	return &Loaders{
		Product: loader[*model.Product]{kind: &k.product}, ProductBySKU: loader[*model.Product]{kind: &k.productBySKU},
		ProductBySlug: loader[*model.Product]{kind: &k.productBySlug}, Category: loader[*model.Category]{kind: &k.category},
		Brand: loader[*model.Brand]{kind: &k.brand}, Warehouse: loader[*model.Warehouse]{kind: &k.warehouse},
		Children: loader[[]*model.Category]{kind: &k.children}, ProductCount: loader[int]{kind: &k.productCount},
		Availability: loader[*model.Availability]{kind: &k.availability}, Inventory: loader[[]*model.InventoryLevel]{kind: &k.inventory},
	}
}

// loader is a dataloader, made on first use (a response that is answered from memory, or
// that never reaches an edge, makes none), that may first look a key up in memory.
type loader[V any] struct {
	kind *kind[V]
	once sync.Once
	dl   *dataloader.Loader[string, V]
}

// Get returns the value of key: from memory when the peek has it, else through the batch.
func (l *loader[V]) Get(ctx context.Context, key string) (V, error) {
	if l.kind.peek != nil {
		if v, ok := l.kind.peek(key); ok {
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
		if l.kind.peek != nil {
			vals[i], ok = l.kind.peek(k)
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

// batch returns the loader's dataloader, whose batches hold at most a page's worth of
// keys. The input channel is sized for one page too: the library's default of 1,000 slots
// is allocated for every batch, a cost that shows in profiles of a page of products.
func (l *loader[V]) batch() *dataloader.Loader[string, V] {
	l.once.Do(func() {
		k := l.kind
		opts := []dataloader.Option[string, V]{dataloader.WithWait[string, V](k.options.wait),
			dataloader.WithBatchCapacity[string, V](500), dataloader.WithInputCapacity[string, V](model.MaxPageSize)}
		if k.options.tracer != nil {
			opts = append(opts, dataloader.WithTracer[string, V](batchTracer[V]{tracer: k.options.tracer, name: "dataloader " + k.name}))
		}
		l.dl = dataloader.NewBatchedLoader(k.fn, opts...)
	})
	return l.dl
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
type loaderScope struct{ kinds *loaderKinds }

func (loaderScope) ExtensionName() string                   { return "Loaders" }
func (loaderScope) Validate(graphql.ExecutableSchema) error { return nil }

func (s loaderScope) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	return next(withLoaders(ctx, newLoaders(s.kinds)))
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
