package cache_test

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
	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"
)

var (
	_ cache.RateLimiter = (*cache.RedisRateLimiter)(nil)
	_ cache.RateLimiter = (*cache.MemoryRateLimiter)(nil)
)

type ratelimitBackend struct {
	name string
	open func(t *testing.T, limit cache.RateLimit) cache.RateLimiter
}

func ratelimitBackends() []ratelimitBackend {
	onRedis := func(client func(testing.TB) (redis.UniversalClient, string)) func(*testing.T, cache.RateLimit) cache.RateLimiter {
		return func(t *testing.T, limit cache.RateLimit) cache.RateLimiter {
			rdb, prefix := client(t)
			l, err := cache.NewRedisRateLimiter(rdb, prefix, limit)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	return []ratelimitBackend{
		{name: "memory", open: func(t *testing.T, limit cache.RateLimit) cache.RateLimiter {
			l, err := cache.NewMemoryRateLimiter(limit)
			if err != nil {
				t.Fatal(err)
			}
			return l
		}},
		{name: "redis", open: onRedis(cachetest.Client)},
		{name: "cluster", open: onRedis(cachetest.ClusterClient)},
	}
}

// ratelimitSlow is a budget slow enough that the few milliseconds a test takes between two
// calls never refill a whole unit: 2 units a second (one per 500 ms), 10 at once.
var ratelimitSlow = cache.RateLimit{PerSecond: 2, Burst: 10}

// TestRateLimiterBudget spends budgets in different ways: many cheap calls or one expensive
// call use the same budget, a client over budget does not hold others back, and the budget
// flows back at the configured rate.
func TestRateLimiterBudget(t *testing.T) {
	for _, b := range ratelimitBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			l := b.open(t, ratelimitSlow)
			allow := func(key string, cost int, want bool) time.Duration {
				t.Helper()
				ok, retryAfter, err := l.Allow(ctx, key, cost)
				if err != nil || ok != want || (ok == (retryAfter > 0)) {
					t.Fatalf("Allow(%s, %d) = %v, %v, %v; want allowed %v with a retry-after when refused", key, cost, ok, retryAfter, err, want)
				}
				return retryAfter
			}

			for range 10 {
				allow("cheap", 1, true)
			}
			allow("cheap", 1, false)
			allow("expensive", 10, true)
			allow("expensive", 1, false)
			allow("capped", 1000, true) // charged as the burst
			allow("capped", 1, false)
			allow("other", 4, true) // other clients still pass

			// Two units take a second to flow back: a refused call names the wait.
			retryAfter := allow("expensive", 2, false)
			if retryAfter < 800*time.Millisecond || retryAfter > time.Second {
				t.Fatalf("retry-after for 2 units at 2/s = %v; want about 1s", retryAfter)
			}
			time.Sleep(retryAfter / 2)
			allow("expensive", 2, false)
			allow("expensive", 1, true)
			time.Sleep(550 * time.Millisecond)
			allow("expensive", 1, true)
			allow("expensive", 1, false)
		})
	}
}

func TestRateLimiterRefusesBadLimits(t *testing.T) {
	for _, limit := range []cache.RateLimit{{}, {PerSecond: 1}, {Burst: 1}, {PerSecond: -1, Burst: 5}} {
		if _, err := cache.NewMemoryRateLimiter(limit); err == nil {
			t.Errorf("NewMemoryRateLimiter(%+v) = nil error; want one", limit)
		}
		if _, err := cache.NewRedisRateLimiter(nil, "", limit); err == nil {
			t.Errorf("NewRedisRateLimiter(%+v) = nil error; want one", limit)
		}
	}
}

// TestComplexityRateLimit runs the extension in a gqlgen handler after the complexity
// limit: operations are charged their complexity.
func TestComplexityRateLimit(t *testing.T) {
	const cheap, expensive = "{ cheap }", "{ products(first: 10) }"
	for _, b := range ratelimitBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			l := b.open(t, ratelimitSlow)
			h := apqTestHandler(extension.FixedComplexityLimit(100), cache.NewComplexityRateLimit(l, apqClientOf, complexityOf, nil))

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

// TestComplexityRateLimitFailsOpen stops Redis: operations run, the failure is logged once,
// not once per operation, and the limiter is left alone for a second after each failure.
// When Redis is back, so is the limit.
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
		cache.NewComplexityRateLimit(l, apqClientOf, complexityOf, slog.New(slog.NewTextHandler(&logs, nil))))
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

// ratelimitCounting counts the calls to a limiter.
type ratelimitCounting struct {
	cache.RateLimiter
	calls atomic.Int32
}

func (c *ratelimitCounting) Allow(ctx context.Context, key string, cost int) (bool, time.Duration, error) {
	c.calls.Add(1)
	return c.RateLimiter.Allow(ctx, key, cost)
}

// complexityOf is the complexity gqlgen's limit computed for the operation of ctx, 0 without
// it: the price that the tests' handler charges.
func complexityOf(ctx context.Context) int {
	if stats := extension.GetComplexityStats(ctx); stats != nil {
		return stats.Complexity
	}
	return 0
}

// TestComplexityRateLimitWithoutComplexity charges 1 per operation when the complexity
// limit does not run first, and says so in the log.
func TestComplexityRateLimitWithoutComplexity(t *testing.T) {
	l, err := cache.NewMemoryRateLimiter(cache.RateLimit{PerSecond: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := apqTestHandler(cache.NewComplexityRateLimit(l, apqClientOf, complexityOf, slog.New(slog.NewTextHandler(&logs, nil))))
	for i, want := range []string{"", "", "RATE_LIMITED"} {
		if got := apqPost(t, h, apqRequest{query: "{ products(first: 10) }", client: "a"}); got.code() != want {
			t.Fatalf("operation %d: %+v; want code %q", i, got, want)
		}
	}
	if !strings.Contains(logs.String(), "operation not priced") {
		t.Fatalf("logs = %q; want the misconfiguration", logs.String())
	}
}

// TestRateLimiterPeriod counts a budget per minute: 3 attempts a minute, 3 at once.
func TestRateLimiterPeriod(t *testing.T) {
	for _, b := range ratelimitBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			l := b.open(t, cache.RateLimit{PerSecond: 3, Burst: 3, Period: time.Minute})
			for i := range 4 {
				ok, retryAfter, err := l.Allow(ctx, "signin", 1)
				if err != nil || ok != (i < 3) {
					t.Fatalf("attempt %d: got %v, %v; want allowed %v", i+1, ok, err, i < 3)
				}
				// One attempt flows back every 20 s.
				if !ok && (retryAfter < 15*time.Second || retryAfter > 20*time.Second) {
					t.Fatalf("retry-after %v; want about 20s", retryAfter)
				}
			}
		})
	}
}

// TestRefusedClientsAreNotParsed: once refused, a client's operations are refused again
// until its retry time without being parsed or charged, even garbage that would not parse;
// other clients go on.
func TestRefusedClientsAreNotParsed(t *testing.T) {
	inner, err := cache.NewMemoryRateLimiter(ratelimitSlow)
	if err != nil {
		t.Fatal(err)
	}
	l := &ratelimitCounting{RateLimiter: inner}
	h := apqTestHandler(extension.FixedComplexityLimit(100), cache.NewComplexityRateLimit(l, apqClientOf, complexityOf, nil))
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

// TestDocumentsArePaidForBeforeParsing: with ChargeBeforeParsing, what the price before
// parsing says is charged even for garbage that never parses, so a client sending it is
// soon refused before parsing, as one over budget is.
func TestDocumentsArePaidForBeforeParsing(t *testing.T) {
	l, err := cache.NewMemoryRateLimiter(ratelimitSlow) // a burst of 10
	if err != nil {
		t.Fatal(err)
	}
	byLength := func(p *graphql.RawParams) int { return len(p.Query) }
	h := apqTestHandler(extension.FixedComplexityLimit(100),
		cache.NewComplexityRateLimit(l, apqClientOf, complexityOf, nil).ChargeBeforeParsing(byLength))
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
