package cache

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/homegoods/storefront/graph/model"
)

// countingCatalog is a system of record of two products that counts its product loads.
type countingCatalog struct{ productLoads atomic.Int64 }

func (c *countingCatalog) ProductsByIDs(_ context.Context, ids []string) ([]*model.Product, error) {
	c.productLoads.Add(1)
	var out []*model.Product
	for _, id := range ids {
		if id == "p1" || id == "p2" {
			out = append(out, &model.Product{ID: id, Name: "product " + id})
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
