package resolvers_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/resolvers"
	"github.com/redis/go-redis/v9"
)

// ratelimitSlow is a budget slow enough that the few milliseconds a test takes between two
// calls never refill a whole unit: 2 units a second (one per 500 ms), 10 at once.
var ratelimitSlow = cache.RateLimit{PerSecond: 2, Burst: 10}

// limiterOn opens a rate limiter with limit on backend: "memory", "redis" or "cluster".
func limiterOn(t *testing.T, backend string, limit cache.RateLimit) cache.RateLimiter {
	t.Helper()
	var l cache.RateLimiter
	var err error
	switch backend {
	case "memory":
		l, err = cache.NewMemoryRateLimiter(limit)
	case "redis":
		rdb, prefix := cachetest.Client(t)
		l, err = cache.NewRedisRateLimiter(rdb, prefix, limit)
	case "cluster":
		rdb, prefix := cachetest.ClusterClient(t)
		l, err = cache.NewRedisRateLimiter(rdb, prefix, limit)
	}
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestComplexityRateLimit(t *testing.T) {
	const cheap, expensive = "{ cheap }", "{ products(first: 10) }"
	for _, backend := range []string{"memory", "redis", "cluster"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			l := limiterOn(t, backend, ratelimitSlow)
			h := apqTestHandler(extension.FixedComplexityLimit(100), resolvers.NewComplexityRateLimit(l, apqClientOf, complexityOf, nil))

			if got := apqPost(t, h, apqRequest{query: expensive, client: "a"}); !got.ok() {
				t.Fatalf("first expensive query: %+v; want it to run", got)
			}
			got := apqPost(t, h, apqRequest{query: cheap, client: "a"})
			if got.code() != "RATE_LIMITED" || got.Errors[0].Extensions["retryAfter"] != 1.0 {
				t.Fatalf("cheap query after an expensive one: %+v; want RATE_LIMITED with retryAfter 1", got)
			}
			for i := range 10 {
				if got := apqPost(t, h, apqRequest{query: cheap, client: "b"}); !got.ok() {
					t.Fatalf("cheap query %d of another client: %+v; want it to run", i, got)
				}
			}
			if got := apqPost(t, h, apqRequest{query: cheap, client: "b"}); got.code() != "RATE_LIMITED" {
				t.Fatalf("eleventh cheap query: %+v; want RATE_LIMITED", got)
			}
			if got := apqPost(t, h, apqRequest{query: expensive}); !got.ok() {
				t.Fatalf("query without a client key: %+v; want it to run unlimited", got)
			}
			time.Sleep(550 * time.Millisecond)
			if got := apqPost(t, h, apqRequest{query: cheap, client: "a"}); !got.ok() {
				t.Fatalf("cheap query after waiting: %+v; want it to run", got)
			}
		})
	}
}

func TestComplexityRateLimitFailsOpen(t *testing.T) {
	const cheap, expensive = "{ cheap }", "{ products(first: 10) }"
	srv := cachetest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	redisLimiter, err := cache.NewRedisRateLimiter(rdb, "t:", cache.RateLimit{PerSecond: 1, Burst: 10})
	if err != nil {
		t.Fatal(err)
	}
	l := &ratelimitCounting{RateLimiter: redisLimiter}
	var logs bytes.Buffer
	h := apqTestHandler(extension.FixedComplexityLimit(100),
		resolvers.NewComplexityRateLimit(l, apqClientOf, complexityOf, slog.New(slog.NewTextHandler(&logs, nil))))
	run := func(query, want string) {
		t.Helper()
		if got := apqPost(t, h, apqRequest{query: query, client: "a"}); got.code() != want {
			t.Fatalf("%s: %+v; want code %q", query, got, want)
		}
	}
	srv.Stop()

	for range 5 {
		run(expensive, "")
	}
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("limiter called %d times for 5 operations in its pause; want 1", n)
	}
	time.Sleep(1100 * time.Millisecond)
	run(expensive, "")
	if n := l.calls.Load(); n != 2 {
		t.Fatalf("limiter called %d times; want a second try after the pause", n)
	}
	if n := strings.Count(logs.String(), "rate limiter failed"); n != 1 {
		t.Fatalf("logged %d failures; want 1:\n%s", n, logs.String())
	}

	srv.Start()
	time.Sleep(1100 * time.Millisecond)
	run(expensive, "")
	run(cheap, "RATE_LIMITED")
}

type ratelimitCounting struct {
	cache.RateLimiter
	calls atomic.Int32
}

func (c *ratelimitCounting) Allow(ctx context.Context, key string, cost int) (bool, time.Duration, error) {
	c.calls.Add(1)
	return c.RateLimiter.Allow(ctx, key, cost)
}

func complexityOf(ctx context.Context) int {
	if stats := extension.GetComplexityStats(ctx); stats != nil {
		return stats.Complexity
	}
	return 0
}

func TestComplexityRateLimitWithoutComplexity(t *testing.T) {
	l, err := cache.NewMemoryRateLimiter(cache.RateLimit{PerSecond: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := apqTestHandler(resolvers.NewComplexityRateLimit(l, apqClientOf, complexityOf, slog.New(slog.NewTextHandler(&logs, nil))))
	for i, want := range []string{"", "", "RATE_LIMITED"} {
		if got := apqPost(t, h, apqRequest{query: "{ products(first: 10) }", client: "a"}); got.code() != want {
			t.Fatalf("operation %d: %+v; want code %q", i, got, want)
		}
	}
	if !strings.Contains(logs.String(), "operation not priced") {
		t.Fatalf("logs = %q; want the misconfiguration", logs.String())
	}
}

func TestRefusedClientsAreNotParsed(t *testing.T) {
	inner, err := cache.NewMemoryRateLimiter(ratelimitSlow)
	if err != nil {
		t.Fatal(err)
	}
	l := &ratelimitCounting{RateLimiter: inner}
	h := apqTestHandler(extension.FixedComplexityLimit(100), resolvers.NewComplexityRateLimit(l, apqClientOf, complexityOf, nil))
	if got := apqPost(t, h, apqRequest{query: "{ products(first: 10) }", client: "a"}); !got.ok() {
		t.Fatalf("first operation: %+v; want it to run", got)
	}
	if got := apqPost(t, h, apqRequest{query: "{ cheap }", client: "a"}); got.code() != "RATE_LIMITED" {
		t.Fatalf("over budget: %+v; want RATE_LIMITED", got)
	}
	calls := l.calls.Load()
	for range 20 {
		if got := apqPost(t, h, apqRequest{query: "{ cheap", client: "a"}); got.code() != "RATE_LIMITED" {
			t.Fatalf("garbage from a refused client: %+v; want RATE_LIMITED before any parse error", got)
		}
	}
	if n := l.calls.Load(); n != calls {
		t.Fatalf("the limiter was called %d more times for a refused client; want 0", n-calls)
	}
	if got := apqPost(t, h, apqRequest{query: "{ cheap }", client: "b"}); !got.ok() {
		t.Fatalf("another client: %+v; want it to run", got)
	}
	time.Sleep(550 * time.Millisecond) // one unit flows back in 500 ms
	if got := apqPost(t, h, apqRequest{query: "{ cheap }", client: "a"}); !got.ok() {
		t.Fatalf("after the retry time: %+v; want it to run", got)
	}
}

func TestDocumentsArePaidForBeforeParsing(t *testing.T) {
	l, err := cache.NewMemoryRateLimiter(ratelimitSlow) // a burst of 10
	if err != nil {
		t.Fatal(err)
	}
	byLength := func(p *graphql.RawParams) int { return len(p.Query) }
	h := apqTestHandler(extension.FixedComplexityLimit(100),
		resolvers.NewComplexityRateLimit(l, apqClientOf, complexityOf, nil).ChargeBeforeParsing(byLength))
	garbage := apqRequest{query: "{ cheap", client: "a"} // 7 units
	if got := apqPost(t, h, garbage); got.code() != "GRAPHQL_PARSE_FAILED" {
		t.Fatalf("first garbage: %+v; want GRAPHQL_PARSE_FAILED", got)
	}
	if got := apqPost(t, h, garbage); got.code() != "RATE_LIMITED" {
		t.Fatalf("second garbage: %+v; want RATE_LIMITED, the first having spent the budget", got)
	}
	if got := apqPost(t, h, apqRequest{query: "{ cheap }", client: "b"}); !got.ok() {
		t.Fatalf("another client: %+v; want it to run", got)
	}
}
