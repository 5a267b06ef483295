package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// LoadFunc loads the values of ids from the system of record in one call, such as one
// `= ANY($1)` statement. Ids without a value are left out of the map.
type LoadFunc[T any] func(ctx context.Context, ids []string) (map[string]T, error)

// ReadThroughOptions tune a ReadThrough. Zero fields take the defaults.
type ReadThroughOptions struct {
	// TTL is how long a loaded value is cached at most (default 5m).
	TTL time.Duration
	// Jitter is the largest fraction of TTL and NegativeTTL taken off at random, so that
	// keys loaded together do not expire together (default 0.1; negative: none).
	Jitter float64
	// NegativeTTL is how long a "not found" is cached (default 30s).
	NegativeTTL time.Duration
	// LockTTL is how long a load may hold a key's lock: a holder that dies frees the key
	// when it ends (default 3s).
	LockTTL time.Duration
	// MaxWait is how long a caller waits for another holder's fill before it loads the key
	// itself without caching it (default LockTTL).
	MaxWait time.Duration
	// LoadTimeout bounds each call of the load function (default 10s).
	LoadTimeout time.Duration
	// XFetchBeta scales how early a hot key is refreshed before it expires: above 1
	// earlier, below 1 later (default 1; negative: never early).
	XFetchBeta float64
	// L1Size is how many entries the in-process tier holds; 0 disables it.
	L1Size int
	// L1TTL is how long an entry stays in the in-process tier (default 1s).
	L1TTL time.Duration
}

func (o ReadThroughOptions) withDefaults() ReadThroughOptions {
	if o.TTL <= 0 {
		o.TTL = 5 * time.Minute
	}
	if o.Jitter == 0 {
		o.Jitter = 0.1
	}
	if o.NegativeTTL <= 0 {
		o.NegativeTTL = 30 * time.Second
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 3 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = o.LockTTL
	}
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = 10 * time.Second
	}
	if o.XFetchBeta == 0 {
		o.XFetchBeta = 1
	}
	if o.L1TTL <= 0 {
		o.L1TTL = time.Second
	}
	return o
}

// How long a waiter first waits for another holder's fill before it looks at the backend
// again, doubling up to the cap: fill notifications normally wake it well before.
const (
	rtBackoffMin = 5 * time.Millisecond
	rtBackoffMax = 200 * time.Millisecond
)

// ReadThrough is a read-through cache of one keyspace ("product", "category"...) on a
// Backend, with at most one load per key at a time across the whole fleet:
//
//	L1 (optional) → backend batch read → misses: in-process dedupe, then a lock per key in
//	the backend → one load call for the keys this call locked → fill with jittered TTL →
//	unlock → fill notification that wakes the callers waiting on those keys.
//
// When the backend fails, reads go straight to the load function, still deduplicated in
// the process, and return no error: a Redis outage makes the site slower, never broken.
// Values are shared between callers and must be treated as read-only.
type ReadThrough[T any] struct {
	bus      *Bus
	backend  Backend
	keyspace string
	load     LoadFunc[T]
	opts     ReadThroughOptions
	log      *slog.Logger
	l1       *l1Cache[T] // nil when disabled

	mu    sync.Mutex
	calls map[string]*rtCall[T] // keys being resolved by this process

	counters rtCounters

	// Test hooks: the clock of expiries and load times, a random number in (0, 1], and the
	// bounds of the waiters' backoff.
	clock      func() time.Time
	rand       func() float64
	backoffMin time.Duration
	backoffMax time.Duration
}

// NewReadThrough returns a cache of keyspace on bus's backend that loads misses with load.
// Its L1 tier, if any, follows the invalidations that bus receives.
func NewReadThrough[T any](bus *Bus, keyspace string, load LoadFunc[T], opts ReadThroughOptions) *ReadThrough[T] {
	opts = opts.withDefaults()
	rt := &ReadThrough[T]{
		bus:        bus,
		backend:    bus.Backend(),
		keyspace:   keyspace,
		load:       load,
		opts:       opts,
		log:        bus.log.With("keyspace", keyspace),
		calls:      make(map[string]*rtCall[T]),
		clock:      time.Now,
		rand:       rtRand,
		backoffMin: rtBackoffMin,
		backoffMax: rtBackoffMax,
	}
	if opts.L1Size > 0 {
		rt.l1 = newL1Cache[T](opts.L1Size, opts.L1TTL)
		bus.register(keyspace, rt)
	}
	return rt
}

// rtRand returns a uniform random number in (0, 1]: XFetch takes its logarithm.
func rtRand() float64 { return 1 - rand.Float64() }

// rtKey is the backend key of id in keyspace.
func rtKey(keyspace, id string) string { return keyspace + ":" + id }

func (rt *ReadThrough[T]) keys(ids []string) []string {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = rtKey(rt.keyspace, id)
	}
	return keys
}

// GetMany returns the values of ids that exist; an id left out of the map has no value.
// Only a failing load function makes it fail, or ctx ending; the map then holds the
// values resolved anyway.
func (rt *ReadThrough[T]) GetMany(ctx context.Context, ids []string) (map[string]T, error) {
	out := make(map[string]T, len(ids))
	useL1 := rt.l1 != nil && rt.bus.Live()
	rest, gen := ids, uint64(0)
	if useL1 {
		gen = rt.l1.generation()
		rest = rt.fromL1(ids, out)
	}
	if len(rest) == 0 {
		return out, nil
	}
	misses, stale := rt.fromBackend(ctx, rest, out)
	if len(misses) > 0 || len(stale) > 0 {
		if err := rt.resolve(ctx, misses, stale, out); err != nil {
			return out, err
		}
	}
	if useL1 {
		rt.l1.put(gen, rest, out, rt.clock())
	}
	return out, nil
}

// Peek returns the value of id when the L1 tier holds it, without any I/O, so that a hot
// path can skip a batched load altogether. It reports false when the tier is off, when the
// bus is not subscribed (invalidations could be missed), and for ids it holds no value of.
func (rt *ReadThrough[T]) Peek(id string) (T, bool) {
	if rt.l1 == nil || !rt.bus.Live() {
		var zero T
		return zero, false
	}
	v, ok := rt.l1.peek(id, rt.clock())
	if ok {
		rt.counters.l1Hits.Add(1)
	}
	return v, ok
}

// fromL1 puts the values of ids found in the L1 tier in out and returns the other ids.
func (rt *ReadThrough[T]) fromL1(ids []string, out map[string]T) []string {
	rest, hits := rt.l1.lookup(ids, out, rt.clock())
	rt.counters.l1Hits.Add(uint64(hits))
	return rest
}

// fromBackend puts the values of ids found in the backend in out. It returns the ids the
// backend did not have, all of them when it failed, and the values XFetch picked for an
// early refresh.
func (rt *ReadThrough[T]) fromBackend(ctx context.Context, ids []string, out map[string]T) (misses []string, stale map[string]T) {
	vals, err := rt.backend.Get(ctx, rt.keys(ids))
	rt.counters.roundTrips.Add(1)
	if err != nil {
		return ids, nil
	}
	now := rt.clock()
	for i, id := range ids {
		env, ok := rt.decode(vals[i])
		if !ok {
			misses = append(misses, id)
			continue
		}
		if env.Negative {
			continue
		}
		out[id] = env.Value
		if rt.refreshDue(env, now) {
			if stale == nil {
				stale = make(map[string]T)
			}
			stale[id] = env.Value
		}
	}
	rt.counters.hits.Add(uint64(len(ids) - len(misses)))
	rt.counters.misses.Add(uint64(len(misses)))
	return misses, stale
}

// refreshDue is XFetch: a key is refreshed early when now - delta*beta*ln(rand) reaches its
// expiry, delta being how long its load took. The chance rises as expiry nears and with
// the cost of the load, so one caller of a hot key reloads it before it expires while the
// others keep getting the cached value.
func (rt *ReadThrough[T]) refreshDue(env rtEnvelope[T], now time.Time) bool {
	if rt.opts.XFetchBeta < 0 {
		return false
	}
	early := float64(env.Delta) * rt.opts.XFetchBeta * -math.Log(rt.rand())
	return float64(now.UnixMicro())+early >= float64(env.Expiry)
}

// rtEnvelope is what the backend holds for a key: the value, or a "not found", with what
// XFetch needs.
type rtEnvelope[T any] struct {
	Value    T     `json:"v,omitempty"`
	Negative bool  `json:"n,omitempty"`
	Delta    int64 `json:"d"` // microseconds the load took
	Expiry   int64 `json:"x"` // Unix microseconds
}

func (rt *ReadThrough[T]) decode(b []byte) (rtEnvelope[T], bool) {
	var env rtEnvelope[T]
	if b == nil {
		return env, false
	}
	if err := json.Unmarshal(b, &env); err != nil {
		rt.log.Debug("cache: undecodable entry is reloaded", "err", err)
		return env, false
	}
	return env, true
}

// rtResult is the outcome of resolving one key.
type rtResult[T any] struct {
	val   T
	found bool
	err   error
}

func (rt *ReadThrough[T]) decodeResult(b []byte) (rtResult[T], bool) {
	env, ok := rt.decode(b)
	return rtResult[T]{val: env.Value, found: !env.Negative}, ok
}

// rtCall is the resolution of one key by this process, which every caller of the key
// awaits.
type rtCall[T any] struct {
	done   chan struct{}
	result rtResult[T] // written before done is closed
}

type rtWait[T any] struct {
	id   string
	call *rtCall[T]
}

// resolve resolves misses and the stale keys due for a refresh, putting their values in
// out. Keys already being resolved by this process are awaited, the others are resolved
// together by one new flight.
func (rt *ReadThrough[T]) resolve(ctx context.Context, misses []string, stale map[string]T, out map[string]T) error {
	var firstErr error
	for _, w := range rt.join(ctx, misses, stale) {
		select {
		case <-w.call.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		switch r := w.call.result; {
		case r.err != nil:
			if firstErr == nil {
				firstErr = r.err
			}
		case r.found:
			out[w.id] = r.val
		default:
			delete(out, w.id)
		}
	}
	return firstErr
}

// join is the batch-aware singleflight. Under one lock it joins the calls already in
// flight for some keys and creates calls for the others, which one goroutine then resolves
// in one batch: a key is never loaded twice at once by this process, and a batch is never
// split into per-key loads. The flight runs detached from ctx, because other callers may
// await its keys after this caller has gone. A stale key already in flight keeps its
// cached value rather than wait.
func (rt *ReadThrough[T]) join(ctx context.Context, misses []string, stale map[string]T) []rtWait[T] {
	waits := make([]rtWait[T], 0, len(misses)+len(stale))
	var owned []string
	var calls []*rtCall[T]
	rt.mu.Lock()
	for _, id := range misses {
		c, ok := rt.calls[id]
		if !ok {
			c = &rtCall[T]{done: make(chan struct{})}
			rt.calls[id] = c
			owned, calls = append(owned, id), append(calls, c)
		}
		waits = append(waits, rtWait[T]{id, c})
	}
	for id := range stale {
		if _, ok := rt.calls[id]; ok {
			continue
		}
		c := &rtCall[T]{done: make(chan struct{})}
		rt.calls[id] = c
		owned, calls = append(owned, id), append(calls, c)
		waits = append(waits, rtWait[T]{id, c})
	}
	rt.mu.Unlock()
	if len(owned) > 0 {
		go rt.fly(context.WithoutCancel(ctx), owned, calls, stale)
	}
	return waits
}

// fly resolves the keys of a flight and completes its calls.
func (rt *ReadThrough[T]) fly(ctx context.Context, ids []string, calls []*rtCall[T], stale map[string]T) {
	res := rt.fetchRecovered(ctx, ids, stale)
	rt.mu.Lock()
	for i, id := range ids {
		calls[i].result = res[id]
		delete(rt.calls, id)
	}
	rt.mu.Unlock()
	for _, c := range calls {
		close(c.done)
	}
}

// fetchRecovered is fetch turning a panic of the load function into an error of every key:
// the flight runs on its own goroutine, where a panic would end the process.
func (rt *ReadThrough[T]) fetchRecovered(ctx context.Context, ids []string, stale map[string]T) (res map[string]rtResult[T]) {
	defer func() {
		if p := recover(); p != nil {
			rt.log.Error("cache: load panicked", "panic", p, "stack", string(debug.Stack()))
			err := fmt.Errorf("load %s: panic: %v", rt.keyspace, p)
			res = make(map[string]rtResult[T], len(ids))
			for _, id := range ids {
				res[id] = rtResult[T]{err: err}
			}
		}
	}()
	return rt.fetch(ctx, ids, stale)
}

// fetch resolves ids through the backend's locks: it loads the keys it locks in one call
// and waits for the fills of the keys that other holders locked.
func (rt *ReadThrough[T]) fetch(ctx context.Context, ids []string, stale map[string]T) map[string]rtResult[T] {
	res := make(map[string]rtResult[T], len(ids))
	w := rt.bus.watch(rt.keys(ids))
	defer w.stop()
	if waiting := rt.claim(ctx, ids, stale, res); len(waiting) > 0 {
		rt.await(ctx, w, waiting, res)
	}
	return res
}

// claim tries to lock ids, loads and fills the ones it locked, and returns the ones locked
// by another holder. A stale key locked by another holder (who is refreshing it) keeps its
// cached value. When the backend fails, every key is loaded directly.
func (rt *ReadThrough[T]) claim(ctx context.Context, ids []string, stale map[string]T, res map[string]rtResult[T]) (waiting []string) {
	claims, err := rt.backend.Lock(ctx, rt.keys(ids), rt.opts.LockTTL)
	rt.counters.roundTrips.Add(1)
	if err != nil {
		rt.counters.fallbacks.Add(1)
		rt.loadDirect(ctx, ids, res)
		return nil
	}
	var mine, tokens, spare, spareTokens []string
	for i, c := range claims {
		id := ids[i]
		if v, ok := stale[id]; ok {
			if c.Token == "" {
				res[id] = rtResult[T]{val: v, found: true}
			} else {
				mine, tokens = append(mine, id), append(tokens, c.Token)
			}
			continue
		}
		if r, ok := rt.decodeResult(c.Value); ok {
			// Filled since the caller's read: the lock, if taken, is not needed.
			res[id] = r
			if c.Token != "" {
				spare, spareTokens = append(spare, id), append(spareTokens, c.Token)
			}
			continue
		}
		if c.Token != "" {
			mine, tokens = append(mine, id), append(tokens, c.Token)
			continue
		}
		waiting = append(waiting, id)
	}
	if len(spare) > 0 {
		rt.unlock(ctx, spare, spareTokens)
	}
	if len(mine) > 0 {
		rt.loadAndFill(ctx, mine, tokens, stale, res)
	}
	return waiting
}

// loadAndFill loads the keys this process locked in one call, fills them, which releases
// their locks, and announces the fill to the waiters of every server instance. A failed
// refresh keeps the stale value.
func (rt *ReadThrough[T]) loadAndFill(ctx context.Context, ids, tokens []string, stale map[string]T, res map[string]rtResult[T]) {
	start := rt.clock()
	vals, err := rt.callLoad(ctx, ids)
	if err != nil {
		rt.unlock(ctx, ids, tokens)
		rt.announceFill(ctx, ids) // a waiter may now take the key over
		for _, id := range ids {
			if v, ok := stale[id]; ok {
				res[id] = rtResult[T]{val: v, found: true}
			} else {
				res[id] = rtResult[T]{err: err}
			}
		}
		return
	}
	rt.fill(ctx, ids, tokens, vals, rt.clock().Sub(start))
	rt.announceFill(ctx, ids)
	for _, id := range ids {
		v, ok := vals[id]
		res[id] = rtResult[T]{val: v, found: ok}
		if _, ok := stale[id]; ok {
			rt.counters.refreshes.Add(1)
		}
	}
}

// fill stores the loaded values of ids, and a "not found" for the ids without one, with
// jittered TTLs, releasing their locks. took is how long the load took.
func (rt *ReadThrough[T]) fill(ctx context.Context, ids, tokens []string, vals map[string]T, took time.Duration) {
	now := rt.clock()
	entries := make([]Entry, 0, len(ids))
	filled := make([]string, 0, len(ids))
	var skipped, skippedTokens []string
	for i, id := range ids {
		e, err := rt.entry(id, vals, took, now)
		if err != nil {
			rt.log.Warn("cache: value not cached, cannot encode it", "id", id, "err", err)
			skipped, skippedTokens = append(skipped, id), append(skippedTokens, tokens[i])
			continue
		}
		entries, filled = append(entries, e), append(filled, tokens[i])
	}
	if _, err := rt.backend.Fill(ctx, entries, filled); err != nil {
		rt.log.Debug("cache: fill failed", "err", err)
	}
	rt.counters.roundTrips.Add(1)
	if len(skipped) > 0 {
		rt.unlock(ctx, skipped, skippedTokens)
	}
}

// entry encodes the envelope of id.
func (rt *ReadThrough[T]) entry(id string, vals map[string]T, took time.Duration, now time.Time) (Entry, error) {
	v, found := vals[id]
	ttl := rt.opts.TTL
	if !found {
		ttl = rt.opts.NegativeTTL
	}
	ttl = rt.jittered(ttl)
	b, err := json.Marshal(rtEnvelope[T]{Value: v, Negative: !found, Delta: took.Microseconds(), Expiry: now.Add(ttl).UnixMicro()})
	if err != nil {
		return Entry{}, err
	}
	return Entry{Key: rtKey(rt.keyspace, id), Value: b, TTL: ttl}, nil
}

// jittered takes up to Jitter of ttl off at random.
func (rt *ReadThrough[T]) jittered(ttl time.Duration) time.Duration {
	if rt.opts.Jitter <= 0 {
		return ttl
	}
	return ttl - time.Duration(rt.rand()*rt.opts.Jitter*float64(ttl))
}

// await waits for other holders to fill the waiting keys: woken by their fill
// notifications, or after a short capped backoff, it reads the keys again and tries to
// lock the ones still missing (a holder that died frees its keys when its lock expires).
// After MaxWait it loads the keys still missing itself.
func (rt *ReadThrough[T]) await(ctx context.Context, w *busWatch, waiting []string, res map[string]rtResult[T]) {
	deadline := time.Now().Add(rt.opts.MaxWait)
	backoff := rt.backoffMin
	for len(waiting) > 0 {
		left := time.Until(deadline)
		if left <= 0 {
			rt.counters.waitTimeouts.Add(1)
			rt.loadDirect(ctx, waiting, res)
			return
		}
		if w.wait(ctx, min(backoff, left)) {
			rt.counters.wakeups.Add(1)
		}
		backoff = min(2*backoff, rt.backoffMax)
		waiting = rt.recheck(ctx, waiting, res)
	}
}

// recheck reads the waiting keys again and claims the ones still missing.
func (rt *ReadThrough[T]) recheck(ctx context.Context, waiting []string, res map[string]rtResult[T]) []string {
	vals, err := rt.backend.Get(ctx, rt.keys(waiting))
	rt.counters.roundTrips.Add(1)
	if err != nil {
		rt.counters.fallbacks.Add(1)
		rt.loadDirect(ctx, waiting, res)
		return nil
	}
	var missing []string
	for i, id := range waiting {
		if r, ok := rt.decodeResult(vals[i]); ok {
			res[id] = r
			continue
		}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return nil
	}
	return rt.claim(ctx, missing, nil, res)
}

// loadDirect loads ids without the backend and caches nothing.
func (rt *ReadThrough[T]) loadDirect(ctx context.Context, ids []string, res map[string]rtResult[T]) {
	vals, err := rt.callLoad(ctx, ids)
	for _, id := range ids {
		v, ok := vals[id]
		res[id] = rtResult[T]{val: v, found: ok, err: err}
	}
}

func (rt *ReadThrough[T]) callLoad(ctx context.Context, ids []string) (map[string]T, error) {
	rt.counters.loads.Add(1)
	rt.counters.keysLoaded.Add(uint64(len(ids)))
	ctx, cancel := context.WithTimeout(ctx, rt.opts.LoadTimeout)
	defer cancel()
	vals, err := rt.load(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", rt.keyspace, err)
	}
	return vals, nil
}

// unlock releases locks this process no longer needs. A failure only leaves them to
// expire.
func (rt *ReadThrough[T]) unlock(ctx context.Context, ids, tokens []string) {
	if err := rt.backend.Unlock(ctx, rt.keys(ids), tokens); err != nil {
		rt.log.Debug("cache: unlock failed", "err", err)
	}
	rt.counters.roundTrips.Add(1)
}

// announceFill wakes the waiters of ids on every server instance. Without it they still
// find the values on their next backoff look.
func (rt *ReadThrough[T]) announceFill(ctx context.Context, ids []string) {
	if err := rt.bus.publish(ctx, busFills, rt.keyspace, ids); err != nil {
		rt.log.Debug("cache: fill notification failed", "err", err)
	}
	rt.counters.roundTrips.Add(1)
}

// Invalidate deletes ids from the backend, together with their locks so that a load
// already under way does not store what it read before the change, and broadcasts the
// invalidation to drop them from the L1 tier of every server instance. Call it after the
// change committed; retry on error.
func (rt *ReadThrough[T]) Invalidate(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	rt.dropL1(ids)
	if err := rt.backend.Delete(ctx, rt.keys(ids)); err != nil {
		return fmt.Errorf("invalidate %s: %w", rt.keyspace, err)
	}
	if err := rt.bus.publish(ctx, busInvalidations, rt.keyspace, ids); err != nil {
		return fmt.Errorf("invalidate %s: broadcast: %w", rt.keyspace, err)
	}
	return nil
}

func (rt *ReadThrough[T]) dropL1(ids []string) {
	if rt.l1 != nil {
		rt.l1.drop(ids)
	}
}

func (rt *ReadThrough[T]) flushL1() {
	if rt.l1 != nil {
		rt.l1.flush()
	}
}

// ReadThroughStats are the counters of a ReadThrough since it was made.
type ReadThroughStats struct {
	L1Hits       uint64 // keys answered by the L1 tier
	Hits         uint64 // keys answered by the backend, cached "not found"s included
	Misses       uint64 // keys the backend did not have
	Loads        uint64 // calls of the load function
	KeysLoaded   uint64 // keys passed to the load function
	RoundTrips   uint64 // backend calls, a pipeline counting once
	Fallbacks    uint64 // flights that went to the load function because the backend failed
	WaitTimeouts uint64 // flights that loaded keys themselves after waiting MaxWait for a fill
	Refreshes    uint64 // keys refreshed early by XFetch
	Wakeups      uint64 // waits ended by a fill notification rather than the backoff timer
}

type rtCounters struct {
	l1Hits, hits, misses, loads, keysLoaded, roundTrips atomic.Uint64
	fallbacks, waitTimeouts, refreshes, wakeups         atomic.Uint64
}

// Stats returns the cache's counters.
func (rt *ReadThrough[T]) Stats() ReadThroughStats {
	c := &rt.counters
	return ReadThroughStats{
		L1Hits: c.l1Hits.Load(), Hits: c.hits.Load(), Misses: c.misses.Load(),
		Loads: c.loads.Load(), KeysLoaded: c.keysLoaded.Load(), RoundTrips: c.roundTrips.Load(),
		Fallbacks: c.fallbacks.Load(), WaitTimeouts: c.waitTimeouts.Load(),
		Refreshes: c.refreshes.Load(), Wakeups: c.wakeups.Load(),
	}
}
