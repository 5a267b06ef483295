package cache

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/graph/model"
)

// benchProduct is a product of the demo catalog's size.
func benchProduct(id string) *model.Product {
	brand := "brand-" + id
	now := time.Now()
	return &model.Product{
		ID: id, SKU: "SKU-" + id, Slug: "oak-dining-table-" + id, Name: "Oak Dining Table " + id,
		Description: strings.Repeat("Solid oak, oiled finish, seats six. ", 8),
		CategoryID:  "c0ffee00-0000-4000-8000-000000000001", BrandID: &brand,
		Price: model.Money{Amount: 89900, Currency: "USD"}, Cost: model.Money{Amount: 41000, Currency: "USD"},
		Status:     model.ProductStatusActive,
		Attributes: map[string]any{"material": "oak", "seats": 6.0, "extendable": true, "color": "natural"},
		Popularity: 420, Rating: 4.6, Version: 3, CreatedAt: now, UpdatedAt: now,
	}
}

func benchLoad(_ context.Context, ids []string) (map[string]*model.Product, error) {
	out := make(map[string]*model.Product, len(ids))
	for _, id := range ids {
		out[id] = benchProduct(id)
	}
	return out, nil
}

// BenchmarkReadThroughHit measures GetMany when every key is cached: one key (a product
// page) and 20 keys (a listing page), with and without the L1 tier.
func BenchmarkReadThroughHit(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) Backend
	}{
		{"memory", func(*testing.B) Backend { return NewMemoryBackend(0) }},
		{"redis", func(b *testing.B) Backend {
			client, prefix := cachetest.Client(b)
			return NewBreaker(NewRedisBackend(client, prefix, nil), BreakerOptions{}, coreLogger(b))
		}},
	}
	for _, bk := range backends {
		for _, l1 := range []int{0, 1000} {
			for _, n := range []int{1, 20} {
				b.Run(fmt.Sprintf("%s/l1=%v/keys=%d", bk.name, l1 > 0, n), func(b *testing.B) {
					rt := NewReadThrough(coreStartBus(b, bk.open(b)), "product", benchLoad, ReadThroughOptions{L1Size: l1})
					ids := make([]string, n)
					for i := range ids {
						ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
					}
					ctx := context.Background()
					if _, err := rt.GetMany(ctx, ids); err != nil {
						b.Fatal(err)
					}
					b.ReportAllocs()
					for b.Loop() {
						if _, err := rt.GetMany(ctx, ids); err != nil {
							b.Fatal(err)
						}
					}
					if s := rt.Stats(); s.Loads != 1 {
						b.Errorf("loads: got %d; want 1 (the warm-up)", s.Loads)
					}
				})
			}
		}
	}
}
