package cache_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"
)

// A token revoked through one instance is refused by another sharing the Redis within a
// second, and that instance's watchers are woken; an id is forgotten once its time is over.
func TestRevocationsReachEveryInstance(t *testing.T) {
	for name, client := range map[string]func(testing.TB) (redis.UniversalClient, string){
		"redis": cachetest.Client, "cluster": cachetest.ClusterClient,
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			rdb, prefix := client(t)
			here := cache.NewRedisRevocations(rdb, prefix, slog.New(slog.DiscardHandler))
			there := cache.NewRedisRevocations(rdb, prefix, slog.New(slog.DiscardHandler))
			go func() { _ = there.Run(ctx) }()
			time.Sleep(2 * cache.RevocationRefresh) // there has read the (empty) list

			woken := there.Changed()
			if err := here.Revoke(ctx, "leaked", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if !here.Revoked("leaked") {
				t.Error("the revoking instance: Revoked = false; want true at once")
			}
			start := time.Now()
			select {
			case <-woken:
			case <-time.After(time.Second):
				t.Fatal("another instance: not woken within a second of the revocation")
			}
			if !there.Revoked("leaked") || there.Revoked("other") {
				t.Errorf("another instance after %v: Revoked(leaked) = %v, Revoked(other) = %v; want true, false",
					time.Since(start), there.Revoked("leaked"), there.Revoked("other"))
			}

			if err := here.Revoke(ctx, "brief", time.Now().Add(500*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			if here.Revoked("brief") {
				t.Error("an id past its time: Revoked = true; want false (its token has expired anyway)")
			}
		})
	}
}

func TestMemoryRevocations(t *testing.T) {
	list := cache.NewMemoryRevocations()
	woken := list.Changed()
	if err := list.Revoke(t.Context(), "leaked", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	default:
		t.Error("Changed: not closed by a revocation")
	}
	if !list.Revoked("leaked") || list.Revoked("other") {
		t.Errorf("Revoked(leaked) = %v, Revoked(other) = %v; want true, false", list.Revoked("leaked"), list.Revoked("other"))
	}
}
