package cache

import (
	"sync"
	"time"
)

// l1Cache is the small in-process tier in front of the backend: a size-bounded map with a
// short TTL that saves a Redis round trip for the hottest keys. Entries are dropped when an
// invalidation for them arrives on the Bus, and the short TTL bounds how stale one can be
// when a broadcast is lost.
type l1Cache[T any] struct {
	max int
	ttl time.Duration

	mu    sync.RWMutex
	gen   uint64 // bumped by every drop and flush
	items map[string]l1Item[T]
}

type l1Item[T any] struct {
	val     T
	found   bool // false: a cached "not found"
	expires time.Time
}

// evictScan is how many entries a full map looks at for expired ones before it evicts an
// arbitrary one.
const evictScan = 8

func newL1Cache[T any](size int, ttl time.Duration) *l1Cache[T] {
	return &l1Cache[T]{max: size, ttl: ttl, items: make(map[string]l1Item[T], size)}
}

// generation returns the current generation, to be passed to put later.
func (c *l1Cache[T]) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// lookup puts the live values of ids in out, counting a cached "not found" as a hit
// without a value, and returns the ids it does not hold.
func (c *l1Cache[T]) lookup(ids []string, out map[string]T, now time.Time) (rest []string, hits int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, id := range ids {
		it, ok := c.items[id]
		if !ok || !now.Before(it.expires) {
			rest = append(rest, id)
			continue
		}
		hits++
		if it.found {
			out[id] = it.val
		}
	}
	return rest, hits
}

// peek returns the live value of id, if the tier holds one.
func (c *l1Cache[T]) peek(id string, now time.Time) (T, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	it, ok := c.items[id]
	if !ok || !it.found || !now.Before(it.expires) {
		var zero T
		return zero, false
	}
	return it.val, true
}

// put stores the outcome of each of ids read from the backend, found when it is in vals,
// unless a drop or flush happened since gen was taken: what was read may predate the
// invalidation that the drop carried out.
func (c *l1Cache[T]) put(gen uint64, ids []string, vals map[string]T, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	expires := now.Add(c.ttl)
	for _, id := range ids {
		if _, ok := c.items[id]; !ok && len(c.items) >= c.max {
			c.evict(now)
		}
		val, found := vals[id]
		c.items[id] = l1Item[T]{val: val, found: found, expires: expires}
	}
}

// evict makes room in a full tier. The caller holds c.mu.
func (c *l1Cache[T]) evict(now time.Time) {
	evictSample(c.items, func(it l1Item[T]) bool { return !now.Before(it.expires) })
}

// evictSample removes the expired entries among the first few of a map's (random) order,
// or one live entry when none of them had expired: a full map makes room in constant time,
// with no ordering to maintain.
func evictSample[V any](items map[string]V, expired func(V) bool) {
	var victim string
	seen, freed := 0, false
	for k, it := range items {
		if expired(it) {
			delete(items, k)
			freed = true
		}
		victim = k
		if seen++; seen == evictScan {
			break
		}
	}
	if !freed {
		delete(items, victim)
	}
}

// drop removes ids.
func (c *l1Cache[T]) drop(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range ids {
		delete(c.items, id)
	}
}

// flush removes every entry.
func (c *l1Cache[T]) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.items)
}
