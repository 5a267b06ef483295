package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// CatalogKeyspace names, on the Bus, the changes of anything a derived answer may show:
// products, categories, brands, stock and the relevance controls. Catalog.Invalidate
// announces it for every batch of such events; Announce does for other sources.
const CatalogKeyspace = "catalog"

// Memo is a small, short-lived in-process cache of answers derived from the whole catalog
// (search results, product listings), which no single key invalidates: every change of the
// catalog, announced on the Bus by any instance, empties it on every instance. Between
// changes it serves an answer for at most its TTL. Concurrent misses of one key share one
// computation.
//
// While the Bus is not subscribed (a change could go unnoticed) it caches nothing.
type Memo[V any] struct {
	bus *Bus
	ttl time.Duration
	max int

	flight singleflight.Group

	mu    sync.Mutex
	gen   uint64 // bumped by every flush
	items map[string]memoItem[V]

	hits, misses atomic.Uint64
}

type memoItem[V any] struct {
	val     V
	expires time.Time
}

// NewMemo returns a memo of at most size answers, each kept at most ttl, emptied by the
// catalog changes bus carries.
func NewMemo[V any](bus *Bus, size int, ttl time.Duration) *Memo[V] {
	m := &Memo[V]{bus: bus, ttl: ttl, max: size, items: make(map[string]memoItem[V])}
	bus.register(CatalogKeyspace, m)
	return m
}

// Do returns the answer of key: the memo's while it holds a live one, else compute's, which
// is kept when compute says it may be (a degraded answer, say, is not). The computation runs
// detached from ctx's cancellation, since callers of the same key may share it.
func (m *Memo[V]) Do(ctx context.Context, key string, compute func(context.Context) (V, bool, error)) (V, error) {
	if v, ok := m.get(key); ok {
		m.hits.Add(1)
		return v, nil
	}
	m.misses.Add(1)
	v, err, _ := m.flight.Do(key, func() (any, error) {
		gen := m.generation()
		v, keep, err := compute(context.WithoutCancel(ctx))
		if err == nil && keep {
			m.put(gen, key, v)
		}
		return v, err
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}

// Stats returns how many answers came from the memo and how many were computed.
func (m *Memo[V]) Stats() (hits, misses uint64) { return m.hits.Load(), m.misses.Load() }

func (m *Memo[V]) get(key string) (V, bool) {
	var zero V
	if !m.bus.Live() {
		return zero, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[key]
	if !ok || !time.Now().Before(it.expires) {
		return zero, false
	}
	return it.val, true
}

func (m *Memo[V]) generation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// put keeps v unless the memo was flushed since gen was taken: the answer may predate the
// change that flushed it.
func (m *Memo[V]) put(gen uint64, key string, v V) {
	if !m.bus.Live() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen != gen {
		return
	}
	now := time.Now()
	if _, ok := m.items[key]; !ok && len(m.items) >= m.max {
		evictSample(m.items, func(it memoItem[V]) bool { return !now.Before(it.expires) })
	}
	m.items[key] = memoItem[V]{val: v, expires: now.Add(m.ttl)}
}

func (m *Memo[V]) dropL1([]string) { m.flushL1() }

func (m *Memo[V]) flushL1() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	clear(m.items)
}

// OnCatalogChange makes every catalog change the Bus carries (and every new subscription,
// after which a change may have been missed) call fn, before the memos made after this
// call are emptied: for in-process state that derived answers are computed from.
func (b *Bus) OnCatalogChange(fn func()) { b.register(CatalogKeyspace, changeHook(fn)) }

// changeHook is a function called on catalog changes.
type changeHook func()

func (h changeHook) dropL1([]string) { h() }
func (h changeHook) flushL1()        { h() }

// Announce tells every instance that the catalog changed, emptying their memos. Changes that
// reach the cache's consumer of the change feed are announced by Catalog.Invalidate; this is
// for changes that become visible later, such as a search index's refresh.
func (b *Bus) Announce(ctx context.Context) error {
	b.mu.Lock()
	for _, m := range b.members[CatalogKeyspace] {
		m.flushL1() // this instance at once, the others when the message arrives
	}
	b.mu.Unlock()
	return b.publish(ctx, busInvalidations, CatalogKeyspace, nil)
}
