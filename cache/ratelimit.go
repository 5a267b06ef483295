package cache

import (
	"context"
	"errors"
	"time"
)

// RateLimiter charges clients for what they consume and refuses those over their budget.
type RateLimiter interface {
	// Allow charges cost to key's budget. When the budget cannot pay, nothing is charged,
	// allowed is false and retryAfter is how long until it can.
	Allow(ctx context.Context, key string, cost int) (allowed bool, retryAfter time.Duration, err error)
}

// RateLimit is a budget: PerSecond units of cost flow in every second, up to Burst units
// saved. Both limiters implement it as a GCRA (an exact token bucket without a refill job).
type RateLimit struct {
	PerSecond int
	// Period, when set, is the time in which PerSecond units flow in instead of a second:
	// sign-in attempts are counted per minute.
	Period time.Duration
	// Burst is the most a client can spend at once. A cost above it is charged as Burst, so
	// that any operation the complexity limit accepts can run once the budget is full:
	// make Burst at least the complexity limit.
	Burst int
}

func (l RateLimit) validate() error {
	if l.PerSecond <= 0 || l.Burst <= 0 {
		return errors.New("rate limit: per second and burst must be positive")
	}
	return nil
}

// period is the time in which PerSecond units flow in.
func (l RateLimit) period() time.Duration {
	if l.Period > 0 {
		return l.Period
	}
	return time.Second
}

// cost is what Allow charges: at least 1, at most the burst.
func (l RateLimit) cost(cost int) int {
	return min(max(cost, 1), l.Burst)
}
