package cache

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homegoods/storefront/graph/model"
)

// countingCatalog is a system of record of two products, p1 and p2, that counts its product
// loads. Their slugs are "slug-p1" and "slug-p2" (skus "SKU-P1"...) unless setSlug changed them.
type countingCatalog struct {
	productLoads, slugLoads atomic.Int64
	mu                      sync.Mutex
	slugs                   map[string]string // changed slugs by product id
}

func (c *countingCatalog) product(id string) *model.Product {
	c.mu.Lock()
	defer c.mu.Unlock()
	slug, ok := c.slugs[id]
	if !ok {
		slug = "slug-" + id
	}
	return &model.Product{ID: id, Name: "product " + id, Slug: slug, SKU: "SKU-" + id}
}

func (c *countingCatalog) setSlug(id, slug string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.slugs == nil {
		c.slugs = map[string]string{}
	}
	c.slugs[id] = slug
}

func (c *countingCatalog) ProductsByIDs(_ context.Context, ids []string) ([]*model.Product, error) {
	c.productLoads.Add(1)
	var out []*model.Product
	for _, id := range ids {
		if id == "p1" || id == "p2" {
			out = append(out, c.product(id))
		}
	}
	return out, nil
}

func (c *countingCatalog) ProductsBySlugs(_ context.Context, slugs []string) ([]*model.Product, error) {
	c.slugLoads.Add(1)
	var out []*model.Product
	for _, id := range []string{"p1", "p2"} {
		if p := c.product(id); slices.Contains(slugs, p.Slug) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (c *countingCatalog) ProductsBySKUs(_ context.Context, skus []string) ([]*model.Product, error) {
	var out []*model.Product
	for _, id := range []string{"p1", "p2"} {
		if p := c.product(id); slices.Contains(skus, p.SKU) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (c *countingCatalog) CategoriesByIDs(context.Context, []string) ([]*model.Category, error) {
	return nil, nil
}

func (c *countingCatalog) BrandsByIDs(context.Context, []string) ([]*model.Brand, error) {
	return nil, nil
}

func (c *countingCatalog) Availability(context.Context, []string) (map[string]*model.Availability, error) {
	return nil, nil
}

func TestCatalogCachesPeeksAndInvalidatesFromOutboxEvents(t *testing.T) {
	ctx := context.Background()
	src := &countingCatalog{}
	catalog := NewCatalog(coreStartBus(t, NewMemoryBackend(0)), src, ReadThroughOptions{L1Size: 100})

	if _, ok := catalog.PeekProduct("p1"); ok {
		t.Fatal("peek before any load: got a product")
	}
	for range 3 {
		ps, err := catalog.ProductsByIDs(ctx, []string{"p1", "p2", "nope"})
		if err != nil || len(ps) != 2 {
			t.Fatalf("products: got %d, %v; want 2", len(ps), err)
		}
	}
	if n := src.productLoads.Load(); n != 1 {
		t.Errorf("loads for three reads: got %d; want 1", n)
	}
	if p, ok := catalog.PeekProduct("p1"); !ok || p.Name != "product p1" {
		t.Errorf("peek after a load: got %v, %v; want product p1", p, ok)
	}

	// Events of other aggregates leave products alone; a product event drops exactly its key.
	events := []model.OutboxEvent{{Aggregate: "brand", AggregateID: "p1"}, {Aggregate: "product", AggregateID: "p1"}}
	if err := catalog.Invalidate(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, ok := catalog.PeekProduct("p1"); ok {
		t.Error("peek after the product's invalidation: still cached")
	}
	if _, ok := catalog.PeekProduct("p2"); !ok {
		t.Error("peek of another product after p1's invalidation: gone; want it kept")
	}
	if _, err := catalog.ProductsByIDs(ctx, []string{"p1"}); err != nil {
		t.Fatal(err)
	}
	if n := src.productLoads.Load(); n != 2 {
		t.Errorf("loads after the invalidation: got %d; want 2", n)
	}
}

// productEvent is the outbox event of a change of p, with the row as payload.
func productEvent(t *testing.T, p *model.Product) model.OutboxEvent {
	t.Helper()
	payload, err := json.Marshal(map[string]any{"id": p.ID, "sku": p.SKU, "slug": p.Slug})
	if err != nil {
		t.Fatal(err)
	}
	return model.OutboxEvent{Aggregate: "product", AggregateID: p.ID, Payload: payload}
}

func mustBySlug(t *testing.T, c *Catalog, slug string) *model.Product {
	t.Helper()
	ps, err := c.ProductsBySlugs(context.Background(), []string{slug})
	if err != nil || len(ps) > 1 {
		t.Fatalf("ProductsBySlugs(%q) = %d products, %v; want at most 1, nil", slug, len(ps), err)
	}
	if len(ps) == 0 {
		return nil
	}
	return ps[0]
}

// TestCatalogFindsProductsBySlugFromTheCache: a slug lookup is answered from the cache tiers
// (and by Peek) once warm; after a product's slug changes, the old slug finds nothing and
// the new one finds it, although the change's event names only the new slug, and a slug
// cached as unknown is found as soon as a product takes it.
func TestCatalogFindsProductsBySlugFromTheCache(t *testing.T) {
	ctx := context.Background()
	src := &countingCatalog{}
	catalog := NewCatalog(coreStartBus(t, NewMemoryBackend(0)), src, ReadThroughOptions{L1Size: 100})

	for range 3 {
		if p := mustBySlug(t, catalog, "slug-p1"); p == nil || p.ID != "p1" {
			t.Fatalf("by slug-p1: got %v; want p1", p)
		}
	}
	if n := src.slugLoads.Load(); n != 1 {
		t.Errorf("slug loads for three lookups: got %d; want 1", n)
	}
	if p, ok := catalog.PeekProductBySlug("slug-p1"); !ok || p.ID != "p1" {
		t.Errorf("peek by slug-p1: got %v, %v; want p1", p, ok)
	}
	if p := mustBySlug(t, catalog, "sofa"); p != nil {
		t.Fatalf("by an unknown slug: got %v; want none", p)
	}

	// p1 moves to slug "sofa": the event drops p1 and the (negatively cached) new slug.
	src.setSlug("p1", "sofa")
	if err := catalog.Invalidate(ctx, []model.OutboxEvent{productEvent(t, src.product("p1"))}); err != nil {
		t.Fatal(err)
	}
	if p := mustBySlug(t, catalog, "sofa"); p == nil || p.ID != "p1" {
		t.Errorf("by the new slug: got %v; want p1", p)
	}
	if p := mustBySlug(t, catalog, "slug-p1"); p != nil {
		t.Errorf("by the old slug: got %v; want none", p)
	}
	if _, ok := catalog.PeekProductBySlug("slug-p1"); ok {
		t.Error("peek by the old slug: found a product; want none")
	}
	// p2 takes p1's old slug: found by it, though the old entry named p1.
	src.setSlug("p2", "slug-p1")
	if err := catalog.Invalidate(ctx, []model.OutboxEvent{productEvent(t, src.product("p2"))}); err != nil {
		t.Fatal(err)
	}
	if p := mustBySlug(t, catalog, "slug-p1"); p == nil || p.ID != "p2" {
		t.Errorf("by the slug p2 took over: got %v; want p2", p)
	}
	if ps, err := catalog.ProductsBySKUs(ctx, []string{"SKU-p2", "nope"}); err != nil || len(ps) != 1 || ps[0].ID != "p2" {
		t.Errorf("by sku: got %v, %v; want p2", ps, err)
	}
}

// TestCatalogChangesEmptyTheMemos: changes of products, categories, brands and the search
// controls empty the memos of derived answers; stock changes and orders do not.
func TestCatalogChangesEmptyTheMemos(t *testing.T) {
	ctx := context.Background()
	bus := coreStartBus(t, NewMemoryBackend(0))
	catalog := NewCatalog(bus, &countingCatalog{}, ReadThroughOptions{L1Size: 100})
	memo := NewMemo[int](bus, 10, time.Minute)
	var computed int
	answer := func() int {
		n, err := memo.Do(ctx, "key", func(context.Context) (int, bool, error) { computed++; return computed, true, nil })
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tt := range []struct {
		aggregate string
		empties   bool
	}{{"inventory", false}, {"order", false}, {"product", true}, {"category", true}, {"brand", true}, {"search", true}} {
		before := answer()
		if err := catalog.Invalidate(ctx, []model.OutboxEvent{{Aggregate: tt.aggregate, AggregateID: "p1"}}); err != nil {
			t.Fatal(err)
		}
		if emptied := answer() != before; emptied != tt.empties {
			t.Errorf("a %s event emptied the memo: %v; want %v", tt.aggregate, emptied, tt.empties)
		}
	}
}
