package cache_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"
)

func apqHashOf(query string) string {
	sum := sha256.Sum256([]byte(query))
	return hex.EncodeToString(sum[:])
}

// TestRedisAPQCacheTTL checks that a query expires when unused and that each use restarts
// its TTL.
func TestRedisAPQCacheTTL(t *testing.T) {
	const query = "{ cheap }"
	hash := apqHashOf(query)
	ctx := context.Background()
	rdb, prefix := cachetest.Client(t)
	key := prefix + "apq:" + hash
	c := cache.NewRedisAPQCache(rdb, prefix, time.Hour, nil)
	c.Add(ctx, hash, query)
	if got := rdb.PTTL(ctx, key).Val(); got <= 59*time.Minute || got > time.Hour {
		t.Fatalf("TTL after Add = %v; want 1h", got)
	}
	rdb.PExpire(ctx, key, time.Minute)
	if _, ok := c.Get(ctx, hash); !ok {
		t.Fatal("Get missed")
	}
	if got := rdb.PTTL(ctx, key).Val(); got <= 59*time.Minute {
		t.Fatalf("TTL after Get = %v; want 1h again", got)
	}
	rdb.PExpire(ctx, key, 20*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	if got, ok := c.Get(ctx, hash); ok {
		t.Fatalf("Get after expiry = %q; want a miss", got)
	}
}
