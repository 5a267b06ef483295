package cache

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
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

// ratelimitLog is a log that is itself rate limited: when Redis is down every request
// fails the same way, and one line per interval says so as well as thousands would.
type ratelimitLog struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// ratelimitLogEvery is how often a repeated failure is logged.
const ratelimitLogEvery = time.Minute

func newRatelimitLog(log *slog.Logger) *ratelimitLog {
	if log == nil {
		log = slog.Default()
	}
	return &ratelimitLog{log: log, every: ratelimitLogEvery}
}

// warn logs msg and err unless it logged less than an interval ago; then it counts them,
// and the next line reports how many were left out.
func (l *ratelimitLog) warn(ctx context.Context, msg string, err error) {
	l.mu.Lock()
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.WarnContext(ctx, msg, "err", err, "suppressed", suppressed)
}

// ratelimitPause lets callers skip Redis for a moment after it failed. A Redis that is down
// or unreachable fails each call only after its dial attempts or timeouts, and paying that
// on every request would turn the outage into slowness everywhere; one call per pause
// finds out when Redis is back.
type ratelimitPause struct {
	until atomic.Int64 // Unix nanoseconds
}

// ratelimitPauseFor is how long calls skip Redis after a failure.
const ratelimitPauseFor = time.Second

// active reports whether calls should skip Redis now.
func (p *ratelimitPause) active() bool { return time.Now().UnixNano() < p.until.Load() }

// start makes calls skip Redis for ratelimitPauseFor.
func (p *ratelimitPause) start() { p.until.Store(time.Now().Add(ratelimitPauseFor).UnixNano()) }

// ratelimitSeconds is d in whole seconds rounded up, at least 1: what a client should wait.
func ratelimitSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
