package cachetest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache/cachetest"
)

// countKeys counts the keys starting with prefix on the server of c, or on every master of a
// cluster client.
func countKeys(t *testing.T, c redis.UniversalClient, prefix string) int {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	n := 0
	count := func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		k := 0
		for iter.Next(ctx) {
			k++
		}
		mu.Lock()
		n += k
		mu.Unlock()
		return iter.Err()
	}
	var err error
	switch c := c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, count)
	case *redis.Client:
		err = count(ctx, c)
	default:
		t.Fatalf("unexpected client type %T", c)
	}
	if err != nil {
		t.Fatalf("count keys %s*: %v", prefix, err)
	}
	return n
}

func TestClientPrefixIsolationAndCleanup(t *testing.T) {
	ctx := context.Background()
	outer, outerPrefix := cachetest.Client(t)
	if err := outer.Set(ctx, outerPrefix+"keep", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	prefixes := []string{outerPrefix}
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c, prefix := cachetest.Client(t)
			for j := range 600 { // more than one UNLINK batch
				if err := c.Set(ctx, fmt.Sprintf("%s%d", prefix, j), j, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if got := countKeys(t, c, prefix); got != 600 {
				t.Fatalf("keys under %s: got %d; want 600", prefix, got)
			}
			prefixes = append(prefixes, prefix)
		})
	}

	for i, a := range prefixes {
		for j, b := range prefixes {
			if i != j && strings.HasPrefix(a, b) {
				t.Errorf("prefix %q starts with prefix %q of another test", a, b)
			}
		}
	}
	for _, p := range prefixes[1:] {
		if got := countKeys(t, outer, p); got != 0 {
			t.Errorf("after the subtest ended, keys under %s: got %d; want 0", p, got)
		}
	}
	if got, err := outer.Get(ctx, outerPrefix+"keep").Result(); err != nil || got != "1" {
		t.Errorf("the outer test's key: got %q, %v; want \"1\"", got, err)
	}
}

func TestClusterClientSpreadsKeysAndCleansUp(t *testing.T) {
	ctx := context.Background()
	outer, _ := cachetest.ClusterClient(t)
	var prefix string
	t.Run("fill", func(t *testing.T) {
		c, p := cachetest.ClusterClient(t)
		prefix = p
		slots := map[int64]bool{}
		for i := range 100 {
			key := fmt.Sprintf("%sk%d", p, i)
			if err := c.Set(ctx, key, i, 0).Err(); err != nil {
				t.Fatalf("SET %s: %v", key, err)
			}
			slot, err := c.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[slot] = true
		}
		for i := range 100 {
			key := fmt.Sprintf("%sk%d", p, i)
			if got, err := c.Get(ctx, key).Int(); err != nil || got != i {
				t.Fatalf("GET %s: got %d, %v; want %d", key, got, err, i)
			}
		}
		if len(slots) < 2 {
			t.Fatalf("100 keys fell into %d slot(s); want them spread", len(slots))
		}
		// Every master holds some of them.
		var mu sync.Mutex
		perMaster := map[string]int{}
		err := c.(*redis.ClusterClient).ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			n := 0
			iter := m.Scan(ctx, 0, p+"*", 1000).Iterator()
			for iter.Next(ctx) {
				n++
			}
			mu.Lock()
			perMaster[m.Options().Addr] = n
			mu.Unlock()
			return iter.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for addr, n := range perMaster {
			if n == 0 {
				t.Errorf("master %s holds none of the 100 keys: %v", addr, perMaster)
			}
			total += n
		}
		if len(perMaster) < 2 || total != 100 {
			t.Errorf("keys per master: %v; want 100 keys over several masters", perMaster)
		}
	})
	if got := countKeys(t, outer, prefix); got != 0 {
		t.Errorf("after the subtest ended, keys under %s: got %d; want 0", prefix, got)
	}
}

func TestServerStopStart(t *testing.T) {
	ctx := context.Background()
	s := cachetest.StartServer(t)
	// No retries: the PING on the stopped server fails at once.
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: time.Second, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if opt, err := redis.ParseURL(s.URL()); err != nil || opt.Addr != s.Addr() {
		t.Errorf("URL %s: addr %v, %v; want %s", s.URL(), opt, err, s.Addr())
	}

	s.Stop()
	s.Stop() // a no-op when stopped
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded on a stopped server")
	}

	s.Start()
	s.Start() // a no-op when running
	// The pool's connections died with the server and the client redials; after many failed
	// dials go-redis fails fast with the last dial error and probes once a second, so
	// recovery may take about a second.
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if err = c.Ping(ctx).Err(); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	if _, err := c.Get(ctx, "k").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET k after a restart: err %v; want redis.Nil (nothing kept on disk)", err)
	}
}

func TestServersGetDistinctAddrs(t *testing.T) {
	a, b := cachetest.StartServer(t), cachetest.StartServer(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
}
