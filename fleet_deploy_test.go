//go:build fleet

package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache/cachetest"
)

// The deployment guide's Redis ACL (README, "Deploying") is enough for everything the server
// does in Redis: a user limited to its prefix's keys and channels and to the guide's command
// categories runs the cache, invalidation, sessions, rate limits and persisted queries.
func TestFleetRedisACLFromTheGuide(t *testing.T) {
	admin, err := redis.ParseURL(cachetest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(admin)
	defer rdb.Close()
	prefix := cachetest.NewPrefix()
	user := "acl" + strings.Trim(prefix, ":")
	// The guide's rule, with this test's prefix for sf:.
	rule := fmt.Sprintf("on >s3cret ~%s* ~rate:%s* &%s* +@read +@write +@scripting +@pubsub +@connection +@transaction +info", prefix, prefix, prefix)
	if err := rdb.Do(context.Background(), append([]any{"ACL", "SETUSER", user}, toAny(strings.Fields(rule))...)...).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })

	env := newTestEnv(t)
	env["REDIS_URL"] = (&url.URL{Scheme: "redis", User: url.UserPassword(user, "s3cret"), Host: admin.Addr, Path: "/0"}).String()
	env["REDIS_PREFIX"] = prefix
	env["RATE_LIMIT_PER_SECOND"] = "100"
	runCommand(t, env, "seed", "--products", "30", "--seed", "3")
	base, _, serverLog := startServerWithLog(t, env)
	token := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))
	id := firstProductID(t, base)
	price(t, base, id)
	setPrice(t, base, token, id, "77.00")
	waitUntil(t, "the price change to reach the cache", func() bool { return price(t, base, id) == "77.00" })
	data, errs := gql(t, base, "", `mutation { startSession { token } }`, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got, err := sessionRead(t, base, data["startSession"].(map[string]any)["token"].(string)); err != nil || got == "" {
		t.Errorf("a session read back: %q %v", got, err)
	}
	time.Sleep(200 * time.Millisecond)
	// Redis refusals show as NOPERM in the server's log; the cache hides them from clients.
	if log := serverLog(); strings.Contains(log, "NOPERM") || strings.Contains(log, "breaker") {
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "NOPERM") || strings.Contains(line, "breaker") {
				t.Error(line)
			}
		}
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
