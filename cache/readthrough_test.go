package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache/cachetest"
)

// rtItem stands for a domain type such as *model.Product.
type rtItem struct {
	ID   string
	Name string
}

// rtSource is the database of the tests: it counts its loads, per call and per key, and
// can hold them at a gate.
type rtSource struct {
	mu     sync.Mutex
	data   map[string]string
	calls  int
	perKey map[string]int
	gate   chan struct{} // when set, loads wait until it is closed
	err    error
	onLoad func() // runs inside every load, such as advancing a fake clock
}

func rtNewSource(data map[string]string) *rtSource {
	return &rtSource{data: data, perKey: make(map[string]int)}
}

func (s *rtSource) load(ctx context.Context, ids []string) (map[string]*rtItem, error) {
	s.mu.Lock()
	s.calls++
	for _, id := range ids {
		s.perKey[id]++
	}
	gate, onLoad := s.gate, s.onLoad
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if onLoad != nil {
		onLoad()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	out := make(map[string]*rtItem)
	for _, id := range ids {
		if name, ok := s.data[id]; ok {
			out[id] = &rtItem{ID: id, Name: name}
		}
	}
	return out, nil
}

func (s *rtSource) set(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[id] = name
}

func (s *rtSource) counts() (calls int, perKey map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, maps.Clone(s.perKey)
}

// rtServer is one server instance: a bus of its own and a cache on backend.
func rtServer(t *testing.T, backend Backend, src *rtSource, opts ReadThroughOptions) *ReadThrough[*rtItem] {
	t.Helper()
	return NewReadThrough(coreStartBus(t, backend), "item", src.load, opts)
}

func rtMustGet(t *testing.T, rt *ReadThrough[*rtItem], ids ...string) map[string]string {
	t.Helper()
	got, err := rt.GetMany(coreCtx(t), ids)
	if err != nil {
		t.Fatalf("GetMany(%v): %v", ids, err)
	}
	names := make(map[string]string, len(got))
	for id, it := range got {
		if it.ID != id {
			t.Errorf("GetMany(%v): value of %s has id %s", ids, id, it.ID)
		}
		names[id] = it.Name
	}
	return names
}

func rtSumStats(rts []*ReadThrough[*rtItem]) ReadThroughStats {
	var sum ReadThroughStats
	for _, rt := range rts {
		s := rt.Stats()
		sum.Misses += s.Misses
		sum.Loads += s.Loads
		sum.KeysLoaded += s.KeysLoaded
		sum.Fallbacks += s.Fallbacks
		sum.WaitTimeouts += s.WaitTimeouts
	}
	return sum
}

// rtStampede releases one GetMany per request at once, spread over servers, holds the
// source's loads until every request has missed in the backend, and returns the results.
func rtStampede(t *testing.T, servers []*ReadThrough[*rtItem], src *rtSource, requests [][]string) []map[string]*rtItem {
	t.Helper()
	src.gate = make(chan struct{})
	wantMisses := uint64(0)
	for _, ids := range requests {
		wantMisses += uint64(len(ids))
	}
	results := make([]map[string]*rtItem, len(requests))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, ids := range requests {
		wg.Go(func() {
			<-start
			got, err := servers[i%len(servers)].GetMany(context.Background(), ids)
			if err != nil {
				t.Errorf("GetMany: %v", err)
			}
			results[i] = got
		})
	}
	close(start)
	coreEventually(t, 30*time.Second, "every request missed", func() bool {
		return rtSumStats(servers).Misses == wantMisses
	})
	close(src.gate)
	wg.Wait()
	return results
}

func TestReadThroughStampedeOneKey(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		src := rtNewSource(map[string]string{"hot": "Oak Table"})
		var servers []*ReadThrough[*rtItem]
		for range 3 {
			servers = append(servers, rtServer(t, newBackend(), src, ReadThroughOptions{}))
		}
		requests := make([][]string, 1000)
		for i := range requests {
			requests[i] = []string{"hot"}
		}
		results := rtStampede(t, servers, src, requests)
		if calls, _ := src.counts(); calls != 1 {
			t.Errorf("loads for 1,000 concurrent misses on 3 servers: got %d; want 1", calls)
		}
		for i, got := range results {
			if got["hot"] == nil || got["hot"].Name != "Oak Table" {
				t.Fatalf("request %d: got %v; want Oak Table", i, got["hot"])
			}
		}
		if s := rtSumStats(servers); s.Fallbacks != 0 || s.WaitTimeouts != 0 {
			t.Errorf("fallbacks, wait timeouts: got %d, %d; want 0, 0", s.Fallbacks, s.WaitTimeouts)
		}
	})
}

func TestReadThroughStampedeBatch(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		data := make(map[string]string)
		var keys []string
		for i := range 10 {
			id := fmt.Sprintf("p%d", i)
			data[id], keys = "name of "+id, append(keys, id)
		}
		keys = append(keys, "ghost") // not found: loaded once too, then cached as such
		src := rtNewSource(data)
		var servers []*ReadThrough[*rtItem]
		for range 3 {
			servers = append(servers, rtServer(t, newBackend(), src, ReadThroughOptions{}))
		}
		// Batches of 5 to 11 keys in different orders, so that servers lock in different orders.
		requests := make([][]string, 1000)
		for i := range requests {
			rotated := append(slices.Clone(keys[i%len(keys):]), keys[:i%len(keys)]...)
			requests[i] = rotated[:5+i%7]
		}
		results := rtStampede(t, servers, src, requests)
		_, perKey := src.counts()
		for _, id := range keys {
			if perKey[id] != 1 {
				t.Errorf("loads of %s: got %d; want 1", id, perKey[id])
			}
		}
		if s := rtSumStats(servers); s.KeysLoaded != uint64(len(keys)) || s.Fallbacks != 0 || s.WaitTimeouts != 0 {
			t.Errorf("keys loaded, fallbacks, wait timeouts: got %d, %d, %d; want %d, 0, 0", s.KeysLoaded, s.Fallbacks, s.WaitTimeouts, len(keys))
		}
		for i, got := range results {
			for _, id := range requests[i] {
				if id == "ghost" {
					if got[id] != nil {
						t.Errorf("request %d: got ghost %v; want not found", i, got[id])
					}
				} else if got[id] == nil || got[id].Name != data[id] {
					t.Fatalf("request %d: %s: got %v; want %q", i, id, got[id], data[id])
				}
			}
		}
	})
}

func TestReadThroughNegativeCaching(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		src := rtNewSource(map[string]string{"a": "A"})
		rt := rtServer(t, newBackend(), src, ReadThroughOptions{NegativeTTL: time.Second, Jitter: -1}) // a second outlasts a loaded machine's pauses
		if got := rtMustGet(t, rt, "a", "ghost"); len(got) != 1 || got["a"] != "A" {
			t.Fatalf("first read: got %v; want only a", got)
		}
		if got := rtMustGet(t, rt, "a", "ghost"); len(got) != 1 {
			t.Fatalf("second read: got %v; want only a", got)
		}
		if calls, _ := src.counts(); calls != 1 {
			t.Errorf("loads after reading a known and an unknown id twice: got %d; want 1", calls)
		}
		if s := rt.Stats(); s.Hits != 2 || s.Misses != 2 {
			t.Errorf("hits, misses: got %d, %d; want 2, 2", s.Hits, s.Misses)
		}
		src.set("ghost", "now exists")
		coreEventually(t, 10*time.Second, "ghost found once its negative entry expired", func() bool {
			return rtMustGet(t, rt, "ghost")["ghost"] == "now exists"
		})
	})
}

func TestReadThroughJitteredTTL(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		data := make(map[string]string)
		var ids []string
		for i := range 100 {
			id := fmt.Sprint(i)
			if i%2 == 0 {
				data[id] = "x"
			}
			ids = append(ids, id)
		}
		backend := newBackend()
		rt := rtServer(t, backend, rtNewSource(data), ReadThroughOptions{TTL: time.Hour, NegativeTTL: time.Minute, Jitter: 0.2})
		now := time.Now()
		rt.clock = func() time.Time { return now }
		rtMustGet(t, rt, ids...)
		raw := bkMustGet(t, backend, rt.keys(ids))
		seen := make(map[int64]bool)
		for i, b := range raw {
			env, ok := rt.decode(b)
			if !ok {
				t.Fatalf("%s: no entry cached", ids[i])
			}
			ttl, want := time.UnixMicro(env.Expiry).Sub(now), time.Hour
			if env.Negative {
				want = time.Minute
			}
			if lo := want * 8 / 10; ttl < lo || ttl > want {
				t.Errorf("%s (negative %v): got TTL %v; want within [%v, %v]", ids[i], env.Negative, ttl, lo, want)
			}
			if store := rtBackendTTL(t, backend, rt.keys(ids[i : i+1])[0]); store > want || store < want*8/10-time.Minute/100 {
				t.Errorf("%s: got TTL %v in the backend; want within [%v, %v]", ids[i], store, want*8/10, want)
			}
			seen[env.Expiry] = true
		}
		if len(seen) < 50 {
			t.Errorf("distinct expiries of 100 keys loaded together: got %d; want them spread", len(seen))
		}
	})
}

// rtBackendTTL returns the time to live the backend itself gives key.
func rtBackendTTL(t *testing.T, b Backend, key string) time.Duration {
	t.Helper()
	switch b := b.(type) {
	case *MemoryBackend:
		b.mu.Lock()
		defer b.mu.Unlock()
		return time.Until(b.values[key].expires)
	case *RedisBackend:
		ttl, err := b.client.PTTL(coreCtx(t), b.valueKey(key)).Result()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		return ttl
	}
	t.Fatalf("unknown backend %T", b)
	return 0
}

// rtFakeTime is a clock that moves only when told.
type rtFakeTime struct {
	mu  sync.Mutex
	now time.Time
}

func (c *rtFakeTime) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *rtFakeTime) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *rtFakeTime) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestReadThroughXFetch(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		backend := newBackend()
		src := rtNewSource(map[string]string{"hot": "v1"})
		clock := &rtFakeTime{now: time.Now()}
		src.onLoad = func() { clock.Add(2 * time.Second) } // every load takes 2 s
		rt := rtServer(t, backend, src, ReadThroughOptions{TTL: 100 * time.Second, Jitter: -1, XFetchBeta: 1})
		rt.clock = clock.Now
		rt.rand = func() float64 { return math.Exp(-1) } // -ln(rand) = 1: refresh from expiry - 2 s on

		rtMustGet(t, rt, "hot")
		expiry := clock.Now().Add(100 * time.Second)
		src.set("hot", "v2")

		clock.Set(expiry.Add(-3 * time.Second))
		if got := rtMustGet(t, rt, "hot")["hot"]; got != "v1" {
			t.Errorf("3 s before expiry: got %q; want the cached v1", got)
		}
		if calls, _ := src.counts(); calls != 1 {
			t.Errorf("loads 3 s before expiry: got %d; want 1 (no refresh yet)", calls)
		}

		clock.Set(expiry.Add(-time.Second))
		if got := rtMustGet(t, rt, "hot")["hot"]; got != "v2" {
			t.Errorf("1 s before expiry: got %q; want v2 refreshed early", got)
		}
		if s := rt.Stats(); s.Refreshes != 1 || s.Loads != 2 {
			t.Errorf("refreshes, loads: got %d, %d; want 1, 2", s.Refreshes, s.Loads)
		}

		// Another server is refreshing the key: callers keep the cached value meanwhile.
		expiry = clock.Now().Add(100 * time.Second)
		src.set("hot", "v3")
		claim := bkMustLock(t, backend, rt.keys([]string{"hot"}), time.Minute)[0]
		if claim.Token == "" {
			t.Fatal("could not take the lock of hot")
		}
		clock.Set(expiry.Add(-time.Second))
		if got := rtMustGet(t, rt, "hot")["hot"]; got != "v2" {
			t.Errorf("while another server refreshes: got %q; want the cached v2", got)
		}
		if calls, _ := src.counts(); calls != 2 {
			t.Errorf("loads while another server refreshes: got %d; want 2", calls)
		}
	})
}

func TestReadThroughL1InvalidationBroadcast(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		src := rtNewSource(map[string]string{"a": "v1", "b": "b1"})
		opts := ReadThroughOptions{L1Size: 100, L1TTL: time.Hour}
		writer := rtServer(t, newBackend(), src, opts)
		reader := rtServer(t, newBackend(), src, opts)
		rtMustGet(t, writer, "a", "b")
		rtMustGet(t, reader, "a", "b")
		before := reader.Stats()
		if got := rtMustGet(t, reader, "a", "b"); got["a"] != "v1" {
			t.Fatalf("reader: got %v; want a = v1", got)
		}
		if s := reader.Stats(); s.L1Hits-before.L1Hits != 2 || s.RoundTrips != before.RoundTrips {
			t.Errorf("second read: got %d L1 hits, %d round trips; want 2, 0", s.L1Hits-before.L1Hits, s.RoundTrips-before.RoundTrips)
		}

		src.set("a", "v2")
		if err := writer.Invalidate(coreCtx(t), "a"); err != nil {
			t.Fatalf("Invalidate: %v", err)
		}
		if got := rtMustGet(t, writer, "a")["a"]; got != "v2" {
			t.Errorf("writer after its own invalidation: got %q; want v2", got)
		}
		coreEventually(t, 10*time.Second, "the reader's L1 dropped a", func() bool {
			return rtMustGet(t, reader, "a")["a"] == "v2"
		})
		if got := rtMustGet(t, reader, "b")["b"]; got != "b1" {
			t.Errorf("b after invalidating a: got %q; want b1", got)
		}
	})
}

func TestReadThroughDeadLockHolder(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		backend := newBackend()
		src := rtNewSource(map[string]string{"k": "value"})
		const lockTTL = 200 * time.Millisecond
		rt := rtServer(t, backend, src, ReadThroughOptions{LockTTL: lockTTL, MaxWait: time.Minute})
		// A holder that takes the lock and dies before it fills.
		if c := bkMustLock(t, backend, rt.keys([]string{"k"}), lockTTL)[0]; c.Token == "" {
			t.Fatal("could not take the lock")
		}
		start := time.Now()
		if got := rtMustGet(t, rt, "k")["k"]; got != "value" {
			t.Errorf("after the holder died: got %q; want value", got)
		}
		if waited := time.Since(start); waited < lockTTL/2 {
			t.Errorf("waited %v; want about the lock TTL %v: the lock was not respected", waited, lockTTL)
		}
		if s := rt.Stats(); s.Loads != 1 || s.WaitTimeouts != 0 || s.Fallbacks != 0 {
			t.Errorf("loads, wait timeouts, fallbacks: got %d, %d, %d; want 1, 0, 0 (loaded under the lock)", s.Loads, s.WaitTimeouts, s.Fallbacks)
		}
		if got := bkMustGet(t, backend, rt.keys([]string{"k"}))[0]; got == nil {
			t.Errorf("after the load: got nothing cached; want the fill")
		}
	})
}

// TestReadThroughWaiterWokenByFill shows that a waiter is woken by the fill notification,
// not by polling: its backoff is an hour long.
func TestReadThroughWaiterWokenByFill(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		holderSrc := rtNewSource(map[string]string{"k": "value"})
		holderSrc.gate = make(chan struct{})
		waiterSrc := rtNewSource(map[string]string{"k": "value"})
		opts := ReadThroughOptions{LockTTL: time.Hour, MaxWait: time.Hour}
		holder := rtServer(t, newBackend(), holderSrc, opts)
		waiter := rtServer(t, newBackend(), waiterSrc, opts)
		waiter.backoffMin, waiter.backoffMax = time.Hour, time.Hour

		filled := make(chan time.Time, 1)
		go func() {
			if _, err := holder.GetMany(context.Background(), []string{"k"}); err != nil {
				t.Errorf("holder: %v", err)
			}
			filled <- time.Now()
		}()
		coreEventually(t, 10*time.Second, "the holder loading", func() bool { return holder.Stats().Loads == 1 })

		woken := make(chan time.Time, 1)
		go func() {
			got, err := waiter.GetMany(context.Background(), []string{"k"})
			if err != nil || got["k"] == nil {
				t.Errorf("waiter: got %v, %v; want the value", got, err)
			}
			woken <- time.Now()
		}()
		// Get, then a Lock that finds the key held: the waiter is waiting.
		coreEventually(t, 10*time.Second, "the waiter waiting", func() bool { return waiter.Stats().RoundTrips >= 2 })
		close(holderSrc.gate)

		fillAt, wokeAt := <-filled, <-woken
		t.Logf("waiter returned %v after the holder's fill", wokeAt.Sub(fillAt))
		if d := wokeAt.Sub(fillAt); d > 5*time.Second {
			t.Errorf("waiter returned %v after the fill; want it woken by the notification", d)
		}
		if s := waiter.Stats(); s.Wakeups < 1 || s.Loads != 0 {
			t.Errorf("waiter wakeups, loads: got %d, %d; want at least 1, 0", s.Wakeups, s.Loads)
		}
	})
}

func TestReadThroughLoadErrorReleasesLocks(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		src := rtNewSource(map[string]string{"k": "value"})
		boom := errors.New("database is down")
		src.err = boom
		rt := rtServer(t, newBackend(), src, ReadThroughOptions{LockTTL: time.Hour, MaxWait: time.Hour})
		if _, err := rt.GetMany(coreCtx(t), []string{"k"}); !errors.Is(err, boom) {
			t.Fatalf("GetMany with a failing load: got %v; want %v", err, boom)
		}
		src.mu.Lock()
		src.err = nil
		src.mu.Unlock()
		if got := rtMustGet(t, rt, "k")["k"]; got != "value" {
			t.Errorf("after the database recovered: got %q; want value", got)
		}
		if s := rt.Stats(); s.Loads != 2 || s.WaitTimeouts != 0 {
			t.Errorf("loads, wait timeouts: got %d, %d; want 2, 0 (the failed load released its lock)", s.Loads, s.WaitTimeouts)
		}
	})
}

func TestReadThroughLoadPanicIsAnError(t *testing.T) {
	bus := NewBus(NewMemoryBackend(0), slog.New(slog.DiscardHandler)) // the panic is logged with its stack
	rt := NewReadThrough(bus, "item", func(context.Context, []string) (map[string]int, error) {
		panic("bug in the loader")
	}, ReadThroughOptions{})
	if _, err := rt.GetMany(coreCtx(t), []string{"k"}); err == nil {
		t.Errorf("GetMany with a panicking load: got no error; want one")
	}
}

// TestReadThroughInvalidateDuringLoad is the stale-set race: a load that read the row
// before a change must not fill the cache after the change's invalidation.
func TestReadThroughInvalidateDuringLoad(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		src := rtNewSource(map[string]string{"k": "old"})
		gate := make(chan struct{})
		src.gate = gate
		rt := rtServer(t, newBackend(), src, ReadThroughOptions{})
		done := make(chan string)
		go func() {
			got, _ := rt.GetMany(context.Background(), []string{"k"})
			done <- got["k"].Name
		}()
		coreEventually(t, 10*time.Second, "the load started", func() bool { return rt.Stats().Loads == 1 })
		// The source answers "old" (read before the change), the change commits, then its
		// invalidation runs before the load fills the cache.
		if err := rt.Invalidate(coreCtx(t), "k"); err != nil {
			t.Fatalf("Invalidate: %v", err)
		}
		close(gate)
		if got := <-done; got != "old" {
			t.Errorf("the read that began before the change: got %q; want old", got)
		}
		src.set("k", "new")
		if got := rtMustGet(t, rt, "k")["k"]; got != "new" {
			t.Errorf("after the invalidation: got %q; want new (the stale fill was dropped)", got)
		}
	})
}

// TestReadThroughRedisOutage kills Redis in the middle of a concurrent read load: no caller
// sees an error, reads fall back to the source, the breaker opens, and once Redis is back
// the breaker closes and reads hit Redis again.
func TestReadThroughRedisOutage(t *testing.T) {
	srv := cachetest.StartServer(t)
	client := redis.NewClient(&redis.Options{
		Addr:                  srv.Addr(),
		ContextTimeoutEnabled: true,
		DialTimeout:           200 * time.Millisecond,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { _ = client.Close() })
	breaker := NewBreaker(NewRedisBackend(client, cachetest.NewPrefix(), nil),
		BreakerOptions{Failures: 3, CoolDown: 100 * time.Millisecond, Timeout: time.Second}, coreLogger(t))
	data := make(map[string]string)
	var ids []string
	for i := range 20 {
		id := fmt.Sprint(i)
		data[id], ids = "item "+id, append(ids, id)
	}
	src := rtNewSource(data)
	rt := NewReadThrough(coreStartBus(t, breaker), "item", src.load, ReadThroughOptions{})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	reads, failures := 0, 0
	for w := range 8 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				batch := []string{ids[i%len(ids)], ids[(i*7)%len(ids)]}
				got, err := rt.GetMany(context.Background(), batch)
				mu.Lock()
				reads++
				if err != nil || len(got) != len(slices.Compact(slices.Sorted(slices.Values(batch)))) {
					failures++
					t.Errorf("GetMany(%v): got %d values, %v; want all, no error", batch, len(got), err)
				}
				mu.Unlock()
			}
		})
	}
	coreEventually(t, 10*time.Second, "reads hitting Redis", func() bool { return rt.Stats().Hits > 100 })

	srv.Stop()
	coreEventually(t, 10*time.Second, "the breaker open", func() bool { return breaker.State() == BreakerOpen })
	fallbacks := rt.Stats().Fallbacks
	coreEventually(t, 10*time.Second, "reads falling back to the source", func() bool { return rt.Stats().Fallbacks > fallbacks+10 })

	srv.Start()
	coreEventually(t, 10*time.Second, "the breaker closed", func() bool { return breaker.State() == BreakerClosed })
	hits := rt.Stats().Hits
	coreEventually(t, 10*time.Second, "reads hitting Redis again", func() bool { return rt.Stats().Hits > hits+100 })
	coreEventually(t, 10*time.Second, "the bus subscribed again", rt.bus.Live)

	close(stop)
	wg.Wait()
	if failures != 0 {
		t.Errorf("failed reads out of %d: got %d; want 0", reads, failures)
	}
	if breaker.Opens() < 1 || breaker.Probes() < 1 {
		t.Errorf("breaker opens, probes: got %d, %d; want at least 1, 1", breaker.Opens(), breaker.Probes())
	}
	t.Logf("%d reads; stats %+v; breaker opened %d times, %d probes", reads, rt.Stats(), breaker.Opens(), breaker.Probes())
}
