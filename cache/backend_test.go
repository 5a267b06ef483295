package cache

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/redis/go-redis/v9"
)

// The conformance suite: every case runs on the memory backend, a single Redis node and the
// Redis Cluster.

func bkKeys(n int, tag string) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%d", tag, i)
	}
	return keys
}

func bkMustGet(t *testing.T, b Backend, keys []string) [][]byte {
	t.Helper()
	vals, err := b.Get(coreCtx(t), keys)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(vals) != len(keys) {
		t.Fatalf("Get returned %d values for %d keys", len(vals), len(keys))
	}
	return vals
}

func bkMustLock(t *testing.T, b Backend, keys []string, ttl time.Duration) []Claim {
	t.Helper()
	claims, err := b.Lock(coreCtx(t), keys, ttl)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if len(claims) != len(keys) {
		t.Fatalf("Lock returned %d claims for %d keys", len(claims), len(keys))
	}
	return claims
}

func TestBackendGetSetDelete(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		b, ctx := newBackend(), coreCtx(t)
		keys := bkKeys(60, "k") // spread over many Cluster slots
		entries := make([]Entry, len(keys))
		for i, k := range keys {
			entries[i] = Entry{Key: k, Value: []byte("v" + strconv.Itoa(i)), TTL: time.Minute}
		}
		if err := b.Set(ctx, entries); err != nil {
			t.Fatalf("Set: %v", err)
		}
		vals := bkMustGet(t, b, append([]string{"absent"}, keys...))
		if vals[0] != nil {
			t.Errorf("absent key: got %q; want nil", vals[0])
		}
		for i, k := range keys {
			if got, want := string(vals[i+1]), "v"+strconv.Itoa(i); got != want {
				t.Errorf("%s: got %q; want %q", k, got, want)
			}
		}
		if err := b.Delete(ctx, keys[:30]); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		vals = bkMustGet(t, b, keys)
		for i, v := range vals {
			if deleted := i < 30; deleted != (v == nil) {
				t.Errorf("%s after deleting the first 30: got %q; want deleted %v", keys[i], v, deleted)
			}
		}
		if vals, err := b.Get(ctx, nil); err != nil || len(vals) != 0 {
			t.Errorf("Get of no keys: got %v, %v; want nothing", vals, err)
		}
	})
}

func TestBackendTTLExpiry(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		b := newBackend()
		err := b.Set(coreCtx(t), []Entry{
			{Key: "short", Value: []byte("s"), TTL: 30 * time.Millisecond},
			{Key: "long", Value: []byte("l"), TTL: time.Minute},
		})
		if err != nil {
			t.Fatalf("Set: %v", err)
		}
		coreEventually(t, 10*time.Second, "the short-lived key expired", func() bool {
			return bkMustGet(t, b, []string{"short"})[0] == nil
		})
		if got := bkMustGet(t, b, []string{"long"})[0]; string(got) != "l" {
			t.Errorf("long-lived key: got %q; want \"l\"", got)
		}
	})
}

func TestBackendLockExclusive(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		b, ctx := newBackend(), coreCtx(t)
		if err := b.Set(ctx, []Entry{{Key: "b", Value: []byte("B"), TTL: time.Minute}}); err != nil {
			t.Fatalf("Set: %v", err)
		}
		first := bkMustLock(t, b, []string{"a", "b"}, time.Minute)
		if first[0].Token == "" || first[1].Token == "" {
			t.Fatalf("first Lock of a, b: got %+v; want both locked", first)
		}
		if first[0].Token == first[1].Token {
			t.Errorf("two locks got the same token %q", first[0].Token)
		}
		if first[0].Value != nil || string(first[1].Value) != "B" {
			t.Errorf("values read by Lock: got %q, %q; want nil, \"B\"", first[0].Value, first[1].Value)
		}
		second := bkMustLock(t, b, []string{"a", "b", "c"}, time.Minute)
		if second[0].Token != "" || second[1].Token != "" || second[2].Token == "" {
			t.Errorf("second Lock of a, b, c: got tokens %q, %q, %q; want only c locked",
				second[0].Token, second[1].Token, second[2].Token)
		}
		if err := b.Unlock(ctx, []string{"a"}, []string{first[0].Token}); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
		if again := bkMustLock(t, b, []string{"a"}, time.Minute); again[0].Token == "" {
			t.Errorf("Lock after Unlock: got no token; want the lock")
		}
	})
}

func TestBackendLockConcurrent(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		const n = 50
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				claims, err := newBackend().Lock(context.Background(), []string{"contended"}, time.Minute)
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				if claims[0].Token != "" {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if won != 1 {
			t.Errorf("%d concurrent Locks of one key: got %d holders; want 1", n, won)
		}
	})
}

func TestBackendLockSafety(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		b, ctx := newBackend(), coreCtx(t)
		old := bkMustLock(t, b, []string{"k"}, 30*time.Millisecond)[0].Token
		var current string
		coreEventually(t, 10*time.Second, "the expired lock taken by a new holder", func() bool {
			current = bkMustLock(t, b, []string{"k"}, time.Minute)[0].Token
			return current != ""
		})
		if err := b.Unlock(ctx, []string{"k"}, []string{old}); err != nil {
			t.Fatalf("Unlock with the expired token: %v", err)
		}
		if c := bkMustLock(t, b, []string{"k"}, time.Minute)[0]; c.Token != "" {
			t.Fatalf("after the old holder's Unlock: got the lock; want it still held by the new holder")
		}
		stale := []Entry{{Key: "k", Value: []byte("stale"), TTL: time.Minute}}
		if n, err := b.Fill(ctx, stale, []string{old}); err != nil || n != 0 {
			t.Errorf("Fill with the expired token: got %d stored, %v; want 0", n, err)
		}
		if got := bkMustGet(t, b, []string{"k"})[0]; got != nil {
			t.Errorf("after the old holder's Fill: got %q; want nothing stored", got)
		}
		fresh := []Entry{{Key: "k", Value: []byte("fresh"), TTL: time.Minute}}
		if n, err := b.Fill(ctx, fresh, []string{current}); err != nil || n != 1 {
			t.Fatalf("Fill by the holder: got %d stored, %v; want 1", n, err)
		}
		c := bkMustLock(t, b, []string{"k"}, time.Minute)[0]
		if c.Token == "" || string(c.Value) != "fresh" {
			t.Errorf("after the holder's Fill: got token %q, value %q; want the lock released and \"fresh\"", c.Token, c.Value)
		}
	})
}

// TestBackendDeleteDropsFill is the guard against the stale-set race: a load that read the
// row before a change must not store it after the change's invalidation.
func TestBackendDeleteDropsFill(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		b, ctx := newBackend(), coreCtx(t)
		token := bkMustLock(t, b, []string{"k"}, time.Minute)[0].Token
		if err := b.Delete(ctx, []string{"k"}); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		old := []Entry{{Key: "k", Value: []byte("before the change"), TTL: time.Minute}}
		if n, err := b.Fill(ctx, old, []string{token}); err != nil || n != 0 {
			t.Errorf("Fill after Delete: got %d stored, %v; want 0", n, err)
		}
		if got := bkMustGet(t, b, []string{"k"})[0]; got != nil {
			t.Errorf("after Delete and Fill: got %q; want nothing", got)
		}
	})
}

func TestBackendFillBatch(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		b, ctx := newBackend(), coreCtx(t)
		keys := bkKeys(40, "f")
		claims := bkMustLock(t, b, keys, time.Minute)
		entries := make([]Entry, len(keys))
		tokens := make([]string, len(keys))
		for i, k := range keys {
			entries[i] = Entry{Key: k, Value: []byte(k), TTL: time.Minute}
			tokens[i] = claims[i].Token
		}
		if n, err := b.Fill(ctx, entries, tokens); err != nil || n != len(keys) {
			t.Fatalf("Fill: got %d stored, %v; want %d", n, err, len(keys))
		}
		for i, v := range bkMustGet(t, b, keys) {
			if string(v) != keys[i] {
				t.Errorf("%s: got %q; want %q", keys[i], v, keys[i])
			}
		}
		for i, c := range bkMustLock(t, b, keys, time.Minute) {
			if c.Token == "" {
				t.Errorf("%s after Fill: got its lock held; want it released", keys[i])
			}
		}
	})
}

// TestBackendPubSub checks delivery and the order within a channel. Across channels there
// is no order: on a Cluster each channel's messages reach the subscriber's node by a path of
// their own.
func TestBackendPubSub(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		sub, pub, ctx := newBackend(), newBackend(), coreCtx(t)
		s, err := sub.Subscribe(ctx, "one", "two")
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		defer s.Close()
		for _, m := range []Message{{"one", []byte("a")}, {"other", []byte("x")}, {"two", []byte("b")}, {"one", []byte("c")}} {
			if err := pub.Publish(ctx, m.Channel, m.Payload); err != nil {
				t.Fatalf("Publish: %v", err)
			}
		}
		got := make(map[string]string)
		for range 3 {
			m, err := s.Receive(ctx)
			if err != nil {
				t.Fatalf("Receive: %v", err)
			}
			got[m.Channel] += string(m.Payload)
		}
		if want := map[string]string{"one": "ac", "two": "b"}; !maps.Equal(got, want) {
			t.Errorf("received by channel: got %q; want %q", got, want)
		}
	})
}

func TestMemoryBackendBounded(t *testing.T) {
	m := NewMemoryBackend(10)
	ctx := context.Background()
	for i := range 100 {
		if err := m.Set(ctx, []Entry{{Key: strconv.Itoa(i), Value: []byte("v"), TTL: time.Minute}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(m.values); got > 10 {
		t.Errorf("entries after 100 sets: got %d; want at most 10", got)
	}
	if got := bkMustGet(t, m, []string{"99"})[0]; string(got) != "v" {
		t.Errorf("the latest entry: got %q; want it kept", got)
	}
}

func TestMemorySubscriptionOverflowBreaksIt(t *testing.T) {
	m := NewMemoryBackend(0)
	ctx := coreCtx(t)
	s, _ := m.Subscribe(ctx, "c")
	defer s.Close()
	for range memorySubscriptionBuffer + 1 {
		_ = m.Publish(ctx, "c", []byte("x"))
	}
	if _, err := s.Receive(ctx); err == nil {
		t.Errorf("Receive after messages were dropped: got no error; want the subscription broken")
	}
}

func TestRedisSlotMatchesCluster(t *testing.T) {
	if got, want := redisSlot("123456789"), 0x31C3; got != want {
		t.Errorf("slot of 123456789: got %d; want %d", got, want)
	}
	if redisSlot("x{user1000}.following") != redisSlot("y{user1000}.followers") {
		t.Errorf("keys with one hash tag: got different slots; want the same")
	}
	client, prefix := cachetest.ClusterClient(t)
	ctx := coreCtx(t)
	r := NewRedisBackend(client, prefix, nil)
	for _, k := range []string{"product:1", "category:ab", r.valueKey("product:42"), r.lockKey("product:42"), "{}", "a{}b", "{x"} {
		want, err := client.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := redisSlot(k); int64(got) != want {
			t.Errorf("slot of %q: got %d; want %d (CLUSTER KEYSLOT)", k, got, want)
		}
	}
}

// A Redis server restarted from a snapshot taken before an invalidation has the old value
// back; a backend with a ServerEpoch does not serve it, as it was written to another server
// process, and serves what is written after the restart.
func TestRestartedRedisDoesNotServeValuesFromBefore(t *testing.T) {
	srv := cachetest.StartServer(t)
	epoch := &ServerEpoch{}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), OnConnect: epoch.OnConnect, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	tagged, raw := NewRedisBackend(client, "t:", epoch), NewRedisBackend(client, "t:", nil)
	ctx := coreCtx(t)
	if err := client.Ping(ctx).Err(); err != nil { // connected: the epoch is known
		t.Fatal(err)
	}
	key := []string{"product:1"}
	if err := tagged.Set(ctx, []Entry{{Key: key[0], Value: []byte("version 1"), TTL: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if got := bkMustGet(t, tagged, key); string(got[0]) != "version 1" {
		t.Fatalf("before the restart: got %q; want version 1", got[0])
	}
	if err := client.Save(ctx).Err(); err != nil { // the snapshot the restart will load
		t.Fatal(err)
	}
	if err := tagged.Delete(ctx, key); err != nil { // version 2 was committed: invalidated
		t.Fatal(err)
	}
	srv.Stop()
	srv.Start()
	for deadline := time.Now().Add(10 * time.Second); client.Ping(ctx).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the restarted server does not answer")
		}
	}
	if got := bkMustGet(t, raw, key); got[0] == nil {
		t.Fatal("the restarted server did not load the old value: the test proves nothing")
	}
	if got := bkMustGet(t, tagged, key); got[0] != nil {
		t.Errorf("after the restart: got %q; want nothing (it was written before the restart)", got[0])
	}
	if claims := bkMustLock(t, tagged, key, time.Second); claims[0].Value != nil {
		t.Errorf("a lock's read after the restart: got %q; want nothing", claims[0].Value)
	}
	if err := tagged.Set(ctx, []Entry{{Key: key[0], Value: []byte("version 2"), TTL: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if got := bkMustGet(t, tagged, key); string(got[0]) != "version 2" {
		t.Errorf("written after the restart: got %q; want version 2", got[0])
	}
}
