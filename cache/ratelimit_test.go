package cache_test

import (
	"context"
	"testing"
	"time"

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

// TestComplexityRateLimitFailsOpen stops Redis: operations run, the failure is logged once,

// not once per operation, and the limiter is left alone for a second after each failure.

// When Redis is back, so is the limit.

// ratelimitCounting counts the calls to a limiter.

// complexityOf is the complexity gqlgen's limit computed for the operation of ctx, 0 without

// it: the price that the tests' handler charges.

// TestComplexityRateLimitWithoutComplexity charges 1 per operation when the complexity

// limit does not run first, and says so in the log.

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

// TestDocumentsArePaidForBeforeParsing: with ChargeBeforeParsing, what the price before

// parsing says is charged even for garbage that never parses, so a client sending it is

// soon refused before parsing, as one over budget is.
