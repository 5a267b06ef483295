//go:build fleet

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache/cachetest"
)

// withSentinel points env at the Redis master that the test Sentinels watch
// (scripts/redis.sh sentinel-start), under a key prefix of the test's own.
func withSentinel(t testing.TB, env testEnv) (testEnv, []string) {
	t.Helper()
	addrs := os.Getenv("TEST_SENTINEL_ADDRS")
	if addrs == "" {
		t.Fatal("TEST_SENTINEL_ADDRS is not set: run make test-fleet")
	}
	env["REDIS_ADDRS"] = addrs
	env["REDIS_MASTER_NAME"] = os.Getenv("TEST_SENTINEL_MASTER")
	env["REDIS_PREFIX"] = cachetest.NewPrefix()
	return env, strings.Split(addrs, ",")
}

// masterAddr asks a Sentinel where the master is.
func masterAddr(t testing.TB, sentinel, name string) string {
	t.Helper()
	s := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer s.Close()
	addr, err := s.GetMasterAddrByName(context.Background(), name).Result()
	if err != nil {
		t.Fatalf("sentinel %s: %v", sentinel, err)
	}
	return strings.Join(addr, ":")
}

// sessionRead reads the session of token through base; "" when the server knows none.
func sessionRead(t testing.TB, base, token string) (string, error) {
	body, _ := json.Marshal(map[string]any{"query": `{ session { createdAt } }`})
	res := postWithHeaders(t, base+"/graphql", strings.NewReader(string(body)), map[string]string{"X-Session-Id": token})
	var r struct {
		Data struct {
			Session *struct{ CreatedAt string } `json:"session"`
		} `json:"data"`
		Errors []any `json:"errors"`
	}
	if err := json.Unmarshal([]byte(res), &r); err != nil || len(r.Errors) > 0 {
		return "", fmt.Errorf("session read: %s", res)
	}
	if r.Data.Session == nil {
		return "", nil
	}
	return r.Data.Session.CreatedAt, nil
}

// A Sentinel failover of the Redis master under reads and writes through two instances:
// no request fails, every session started before it is still there (read on either
// instance), the rankings are the same, new sessions start on the new master, and a price
// change after it reaches both instances' caches.
func TestFleetSentinelFailover(t *testing.T) {
	env, sentinels := withSentinel(t, newTestEnv(t))
	env["RATE_LIMIT_PER_SECOND"] = "0"
	name := env["REDIS_MASTER_NAME"]
	runCommand(t, env, "seed", "--products", "30", "--seed", "3")
	a, _ := startServer(t, env)
	b, _ := startServer(t, env)
	s := shopOn(t, env, a)
	bases := []string{a, b}

	// State kept in Redis before the failover: sessions, and rankings from orders.
	var tokens []string
	for range 20 {
		data := s.must("", `mutation { startSession { token } }`, nil)
		tokens = append(tokens, data["startSession"].(map[string]any)["token"].(string))
	}
	for i := range 3 {
		cart := s.guestCart(map[string]int{s.product(i, 10): 3 - i})
		if _, code := s.checkout("", cart, fmt.Sprint("sentinel-", i)); code != "" {
			t.Fatalf("checkout: %s", code)
		}
	}
	const bestsellers = `{ bestsellers(first: 5) { id } }`
	var ranked string
	waitUntil(t, "the orders to reach the rankings", func() bool {
		ranked = fmt.Sprint(s.must("", bestsellers, nil))
		return strings.Count(ranked, "gid://") == 3
	})
	id := s.product(5, 10)

	before := masterAddr(t, sentinels[0], name)
	l := startLoad(4, func(w, i int) string {
		base := bases[(w+i)%2]
		if w%2 == 0 {
			data, failed := request(base, "", priceQuery, map[string]any{"id": id}, nil)
			if failed == "" && data["product"] == nil {
				return "no product"
			}
			return failed
		}
		data, failed := request(base, "", `{ session { createdAt } }`, nil, map[string]string{"X-Session-Id": tokens[i%len(tokens)]})
		if failed == "" && data["session"] == nil {
			return "a session started before the failover is gone"
		}
		return failed
	})
	time.Sleep(500 * time.Millisecond)
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	defer sentinel.Close()
	failoverAt := time.Now()
	if err := sentinel.Failover(context.Background(), name).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	waitUntil(t, "the Sentinels to promote the replica", func() bool { return masterAddr(t, sentinels[0], name) != before })
	t.Logf("master %s -> %s in %s", before, masterAddr(t, sentinels[0], name), time.Since(failoverAt).Round(time.Millisecond))

	// After the failover: a price change reaches both instances' caches, and new sessions
	// start (on the new master), while the load goes on.
	for round := range 3 {
		want := fmt.Sprintf("%d.00", 500+round)
		setPrice(t, a, s.merchandiser, id, want)
		for _, base := range bases {
			waitUntil(t, "a price change after the failover to reach "+base, func() bool { return price(t, base, id) == want })
		}
	}
	time.Sleep(time.Second)
	l.end(t, "the failover")
	data := s.must("", `mutation { startSession { token } }`, nil)
	token := data["startSession"].(map[string]any)["token"].(string)
	for _, base := range bases {
		if got, err := sessionRead(t, base, token); err != nil || got == "" {
			t.Errorf("a session started after the failover, read on %s: %q %v", base, got, err)
		}
	}
	if after := fmt.Sprint(s.must("", bestsellers, nil)); after != ranked {
		t.Errorf("bestsellers after the failover: %s; before: %s", after, ranked)
	}
}
