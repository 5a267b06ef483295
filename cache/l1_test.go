package cache

import (
	"strconv"
	"testing"
	"time"
)

func TestL1Bounded(t *testing.T) {
	c := newL1Cache[int](10, time.Minute)
	now := time.Now()
	for i := range 100 {
		c.put(c.generation(), []string{strconv.Itoa(i)}, map[string]int{strconv.Itoa(i): i}, now)
	}
	if got := len(c.items); got > 10 {
		t.Errorf("entries after 100 puts: got %d; want at most 10", got)
	}
	out := map[string]int{}
	if rest, hits := c.lookup([]string{"99"}, out, now); hits != 1 || len(rest) != 0 || out["99"] != 99 {
		t.Errorf("the latest entry: got %v, %d hits, rest %v; want 99 found", out, hits, rest)
	}
}

func TestL1ExpiresAndCachesNotFound(t *testing.T) {
	c := newL1Cache[int](10, time.Second)
	now := time.Now()
	c.put(c.generation(), []string{"a", "ghost"}, map[string]int{"a": 1}, now)
	out := map[string]int{}
	rest, hits := c.lookup([]string{"a", "ghost", "b"}, out, now)
	if hits != 2 || len(rest) != 1 || rest[0] != "b" || len(out) != 1 || out["a"] != 1 {
		t.Errorf("lookup: got %v, %d hits, rest %v; want a found, ghost a cached miss, b unknown", out, hits, rest)
	}
	if rest, hits := c.lookup([]string{"a"}, map[string]int{}, now.Add(time.Second)); hits != 0 || len(rest) != 1 {
		t.Errorf("after the TTL: got %d hits, rest %v; want a expired", hits, rest)
	}
}

// TestL1DropWinsOverLatePut: a value read before an invalidation must not enter the L1
// after the invalidation dropped the key.
func TestL1DropWinsOverLatePut(t *testing.T) {
	c := newL1Cache[int](10, time.Minute)
	now := time.Now()
	gen := c.generation() // a read begins
	c.drop([]string{"a"}) // the invalidation arrives
	c.put(gen, []string{"a"}, map[string]int{"a": 1}, now)
	if rest, hits := c.lookup([]string{"a"}, map[string]int{}, now); hits != 0 || len(rest) != 1 {
		t.Errorf("after a put that began before a drop: got %d hits; want a not cached", hits)
	}
	c.put(c.generation(), []string{"a"}, map[string]int{"a": 2}, now)
	c.flush()
	if _, hits := c.lookup([]string{"a"}, map[string]int{}, now); hits != 0 {
		t.Errorf("after flush: got %d hits; want 0", hits)
	}
}
