package cache

import (
	"context"
	"sync"
	"time"
)

// MemoryRateLimiter keeps budgets in process memory: the embedded default without Redis,
// for a single server instance. It runs the same GCRA as redis_rate.
type MemoryRateLimiter struct {
	limit RateLimit
	// interval is the time one unit of cost takes to flow back in.
	interval time.Duration

	mu sync.Mutex
	// tat is each client's theoretical arrival time: when its budget is full again.
	tat       map[string]time.Time
	lastSweep time.Time
}

// ratelimitSweepEvery bounds how long idle clients keep their memory.
const ratelimitSweepEvery = time.Minute

// NewMemoryRateLimiter returns a limiter with budget limit per key.
func NewMemoryRateLimiter(limit RateLimit) (*MemoryRateLimiter, error) {
	if err := limit.validate(); err != nil {
		return nil, err
	}
	return &MemoryRateLimiter{
		limit:     limit,
		interval:  limit.period() / time.Duration(limit.PerSecond),
		tat:       map[string]time.Time{},
		lastSweep: time.Now(),
	}, nil
}

// Allow charges cost to key's budget; see RateLimiter.
func (l *MemoryRateLimiter) Allow(_ context.Context, key string, cost int) (bool, time.Duration, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	tat := l.tat[key]
	if tat.Before(now) {
		tat = now
	}
	newTat := tat.Add(time.Duration(l.limit.cost(cost)) * l.interval)
	allowAt := newTat.Add(-time.Duration(l.limit.Burst) * l.interval)
	if now.Before(allowAt) {
		return false, allowAt.Sub(now), nil
	}
	l.tat[key] = newTat
	return true, 0, nil
}

// sweep forgets clients whose budget is full again, at most once per ratelimitSweepEvery.
// The caller holds l.mu.
func (l *MemoryRateLimiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < ratelimitSweepEvery {
		return
	}
	l.lastSweep = now
	for key, tat := range l.tat {
		if !tat.After(now) {
			delete(l.tat, key)
		}
	}
}
