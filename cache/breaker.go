package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBreakerOpen is returned without calling the backend while the breaker is open.
var ErrBreakerOpen = errors.New("cache: circuit breaker open")

// BreakerState is the state of a Breaker.
type BreakerState int32

// The states of a Breaker.
const (
	// BreakerClosed lets every call through.
	BreakerClosed BreakerState = iota
	// BreakerOpen fails every call at once until the cool-down has passed.
	BreakerOpen
	// BreakerHalfOpen lets one probe through; its outcome closes or reopens the breaker.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// BreakerOptions tune a Breaker. Zero fields take the defaults.
type BreakerOptions struct {
	// Failures is how many consecutive failed calls open the breaker (default 5).
	Failures int
	// CoolDown is how long the breaker stays open before it lets a probe through
	// (default 1s).
	CoolDown time.Duration
	// Timeout bounds each call (default 100ms): a Redis that hangs counts as failing.
	// Subscribe, a dial and a round trip made only at (re)subscription, gets ten times
	// as long.
	Timeout time.Duration
}

func (o BreakerOptions) withDefaults() BreakerOptions {
	if o.Failures <= 0 {
		o.Failures = 5
	}
	if o.CoolDown <= 0 {
		o.CoolDown = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Millisecond
	}
	return o
}

// Breaker is a Backend that guards another one, normally a RedisBackend, with a circuit
// breaker: after consecutive failures or timeouts it fails calls fast with ErrBreakerOpen,
// so that callers go to the database at once instead of waiting on a Redis that is down;
// after a cool-down one probe call tests the backend and closes the breaker on success.
type Breaker struct {
	backend Backend
	opts    BreakerOptions
	log     *slog.Logger
	now     func() time.Time

	state    atomic.Int32 // BreakerState, read without the lock on every call
	failures atomic.Int32 // consecutive failures while closed
	opens    atomic.Uint64
	probes   atomic.Uint64

	mu       sync.Mutex // serializes state changes
	openedAt time.Time
	probing  bool
}

// NewBreaker returns a closed Breaker around backend that logs its state changes to log.
func NewBreaker(backend Backend, opts BreakerOptions, log *slog.Logger) *Breaker {
	return &Breaker{backend: backend, opts: opts.withDefaults(), log: log, now: time.Now}
}

// State returns the breaker's current state.
func (b *Breaker) State() BreakerState { return BreakerState(b.state.Load()) }

// Opens returns how many times the breaker has opened.
func (b *Breaker) Opens() uint64 { return b.opens.Load() }

// Probes returns how many probe calls the breaker has let through while half-open.
func (b *Breaker) Probes() uint64 { return b.probes.Load() }

// Get calls the backend's Get through the breaker.
func (b *Breaker) Get(ctx context.Context, keys []string) (vals [][]byte, err error) {
	err = b.do(ctx, b.opts.Timeout, func(ctx context.Context) error {
		vals, err = b.backend.Get(ctx, keys)
		return err
	})
	return vals, err
}

// Set calls the backend's Set through the breaker.
func (b *Breaker) Set(ctx context.Context, entries []Entry) error {
	return b.do(ctx, b.opts.Timeout, func(ctx context.Context) error {
		return b.backend.Set(ctx, entries)
	})
}

// Delete calls the backend's Delete through the breaker.
func (b *Breaker) Delete(ctx context.Context, keys []string) error {
	return b.do(ctx, b.opts.Timeout, func(ctx context.Context) error {
		return b.backend.Delete(ctx, keys)
	})
}

// Lock calls the backend's Lock through the breaker.
func (b *Breaker) Lock(ctx context.Context, keys []string, ttl time.Duration) (claims []Claim, err error) {
	err = b.do(ctx, b.opts.Timeout, func(ctx context.Context) error {
		claims, err = b.backend.Lock(ctx, keys, ttl)
		return err
	})
	return claims, err
}

// Unlock calls the backend's Unlock through the breaker.
func (b *Breaker) Unlock(ctx context.Context, keys, tokens []string) error {
	return b.do(ctx, b.opts.Timeout, func(ctx context.Context) error {
		return b.backend.Unlock(ctx, keys, tokens)
	})
}

// Fill calls the backend's Fill through the breaker.
func (b *Breaker) Fill(ctx context.Context, entries []Entry, tokens []string) (stored int, err error) {
	err = b.do(ctx, b.opts.Timeout, func(ctx context.Context) error {
		stored, err = b.backend.Fill(ctx, entries, tokens)
		return err
	})
	return stored, err
}

// Publish calls the backend's Publish through the breaker.
func (b *Breaker) Publish(ctx context.Context, channel string, payload []byte) error {
	return b.do(ctx, b.opts.Timeout, func(ctx context.Context) error {
		return b.backend.Publish(ctx, channel, payload)
	})
}

// Subscribe calls the backend's Subscribe through the breaker. The subscription's Receive
// is not guarded: it blocks by design, and it reports a broken connection itself.
func (b *Breaker) Subscribe(ctx context.Context, channels ...string) (sub Subscription, err error) {
	err = b.do(ctx, 10*b.opts.Timeout, func(ctx context.Context) error {
		sub, err = b.backend.Subscribe(ctx, channels...)
		return err
	})
	return sub, err
}

// do runs call with a timeout if the breaker allows it and records the outcome.
func (b *Breaker) do(ctx context.Context, timeout time.Duration, call func(context.Context) error) error {
	probe, err := b.allow()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err = call(cctx)
	cancel()
	b.record(ctx, probe, err)
	return err
}

// allow lets a call through, reporting whether it is the probe of a half-open breaker.
func (b *Breaker) allow() (probe bool, err error) {
	if b.State() == BreakerClosed {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.State() {
	case BreakerClosed:
		return false, nil
	case BreakerOpen:
		if b.now().Sub(b.openedAt) < b.opts.CoolDown {
			return false, ErrBreakerOpen
		}
		b.state.Store(int32(BreakerHalfOpen))
		b.log.Info("cache: circuit breaker half-open, probing the backend")
	}
	if b.probing {
		return false, ErrBreakerOpen
	}
	b.probing = true
	b.probes.Add(1)
	return true, nil
}

// record updates the breaker with a call's outcome. A call that ended because its caller
// gave up says nothing about the backend.
func (b *Breaker) record(ctx context.Context, probe bool, err error) {
	switch {
	case err == nil && probe:
		b.close()
	case err == nil:
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
	case ctx.Err() != nil:
		if probe {
			b.mu.Lock()
			b.probing = false
			b.mu.Unlock()
		}
	case probe:
		b.open(BreakerHalfOpen, err)
	default:
		if int(b.failures.Add(1)) >= b.opts.Failures {
			b.open(BreakerClosed, err)
		}
	}
}

// open opens the breaker if it is still in state from: a late failure of a call let
// through before the breaker opened must not cut short a probe.
func (b *Breaker) open(from BreakerState, cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.State() != from {
		return
	}
	b.state.Store(int32(BreakerOpen))
	b.failures.Store(0)
	b.openedAt = b.now()
	b.probing = false
	b.opens.Add(1)
	b.log.Warn("cache: circuit breaker open, reads go to the database", "cause", cause, "cool_down", b.opts.CoolDown)
}

func (b *Breaker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state.Store(int32(BreakerClosed))
	b.failures.Store(0)
	b.probing = false
	b.log.Info("cache: circuit breaker closed, backend is back")
}
