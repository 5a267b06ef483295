package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// RedisRateLimiter keeps budgets in Redis, shared by every server instance: one key per
// client updated by redis_rate's GCRA script, so it works on a Redis Cluster. redis_rate puts
// its own "rate:" in front of the keys (rate:<prefix>ratelimit:<key>); they expire by
// themselves once the budget is full again.
type RedisRateLimiter struct {
	limiter *redis_rate.Limiter
	prefix  string
	limit   RateLimit
}

// NewRedisRateLimiter returns a limiter with budget limit per key.
func NewRedisRateLimiter(rdb redis.UniversalClient, prefix string, limit RateLimit) (*RedisRateLimiter, error) {
	if err := limit.validate(); err != nil {
		return nil, err
	}
	return &RedisRateLimiter{limiter: redis_rate.NewLimiter(rdb), prefix: prefix + "ratelimit:", limit: limit}, nil
}

// Allow charges cost to key's budget; see RateLimiter.
func (l *RedisRateLimiter) Allow(ctx context.Context, key string, cost int) (bool, time.Duration, error) {
	limit := redis_rate.Limit{Rate: l.limit.PerSecond, Burst: l.limit.Burst, Period: l.limit.period()}
	res, err := l.limiter.AllowN(ctx, l.prefix+key, limit, l.limit.cost(cost))
	if err != nil {
		return false, 0, fmt.Errorf("rate limit: %w", err)
	}
	if res.Allowed == 0 {
		return false, res.RetryAfter, nil
	}
	return true, 0, nil
}
