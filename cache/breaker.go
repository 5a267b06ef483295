package cache

import (
	"context"
	"log/slog"
	"time"

	"github.com/homegoods/storefront/breaker"
)

// ErrBreakerOpen is returned without calling the backend while the breaker is open.
var ErrBreakerOpen = breaker.ErrOpen

// BreakerState is the state of a Breaker.
type BreakerState = breaker.State

// The states of a Breaker.
const (
	BreakerClosed   = breaker.Closed
	BreakerOpen     = breaker.Open
	BreakerHalfOpen = breaker.HalfOpen
)

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
// breaker (package breaker): after consecutive failures or timeouts it fails calls fast
// with ErrBreakerOpen, so that callers go to the database at once instead of waiting on a
// Redis that is down; after a cool-down one probe call tests the backend and closes the
// breaker on success.
type Breaker struct {
	backend Backend
	opts    BreakerOptions
	breaker *breaker.Breaker
	now     func() time.Time // the breaker's clock, which tests move
}

// NewBreaker returns a closed Breaker around backend that logs its state changes to log.
func NewBreaker(backend Backend, opts BreakerOptions, log *slog.Logger) *Breaker {
	b := &Breaker{backend: backend, opts: opts.withDefaults(), now: time.Now}
	b.breaker = breaker.New(breaker.Options{Failures: b.opts.Failures, CoolDown: b.opts.CoolDown,
		Now: func() time.Time { return b.now() }, OnChange: func(_, to breaker.State, cause error) {
			switch to {
			case breaker.Open:
				log.Warn("cache: circuit breaker open, reads go to the database", "cause", cause, "cool_down", b.opts.CoolDown)
			case breaker.HalfOpen:
				log.Info("cache: circuit breaker half-open, probing the backend")
			case breaker.Closed:
				log.Info("cache: circuit breaker closed, backend is back")
			}
		}})
	return b
}

// State returns the breaker's current state.
func (b *Breaker) State() BreakerState { return b.breaker.State() }

// Opens returns how many times the breaker has opened.
func (b *Breaker) Opens() uint64 { return b.breaker.Opens() }

// Probes returns how many probe calls the breaker has let through while half-open.
func (b *Breaker) Probes() uint64 { return b.breaker.Probes() }

// Get calls the backend's Get through the breaker.
func (b *Breaker) Get(ctx context.Context, keys []string) (vals [][]byte, err error) {
	err = b.breaker.DoWithin(ctx, b.opts.Timeout, func(ctx context.Context) error {
		vals, err = b.backend.Get(ctx, keys)
		return err
	})
	return vals, err
}

// Set calls the backend's Set through the breaker.
func (b *Breaker) Set(ctx context.Context, entries []Entry) error {
	return b.breaker.DoWithin(ctx, b.opts.Timeout, func(ctx context.Context) error {
		return b.backend.Set(ctx, entries)
	})
}

// Delete calls the backend's Delete through the breaker.
func (b *Breaker) Delete(ctx context.Context, keys []string) error {
	return b.breaker.DoWithin(ctx, b.opts.Timeout, func(ctx context.Context) error {
		return b.backend.Delete(ctx, keys)
	})
}

// Lock calls the backend's Lock through the breaker.
func (b *Breaker) Lock(ctx context.Context, keys []string, ttl time.Duration) (claims []Claim, err error) {
	err = b.breaker.DoWithin(ctx, b.opts.Timeout, func(ctx context.Context) error {
		claims, err = b.backend.Lock(ctx, keys, ttl)
		return err
	})
	return claims, err
}

// Unlock calls the backend's Unlock through the breaker.
func (b *Breaker) Unlock(ctx context.Context, keys, tokens []string) error {
	return b.breaker.DoWithin(ctx, b.opts.Timeout, func(ctx context.Context) error {
		return b.backend.Unlock(ctx, keys, tokens)
	})
}

// Fill calls the backend's Fill through the breaker.
func (b *Breaker) Fill(ctx context.Context, entries []Entry, tokens []string) (stored int, err error) {
	err = b.breaker.DoWithin(ctx, b.opts.Timeout, func(ctx context.Context) error {
		stored, err = b.backend.Fill(ctx, entries, tokens)
		return err
	})
	return stored, err
}

// Publish calls the backend's Publish through the breaker.
func (b *Breaker) Publish(ctx context.Context, channel string, payload []byte) error {
	return b.breaker.DoWithin(ctx, b.opts.Timeout, func(ctx context.Context) error {
		return b.backend.Publish(ctx, channel, payload)
	})
}

// Subscribe calls the backend's Subscribe through the breaker. The subscription's Receive
// is not guarded: it blocks by design, and it reports a broken connection itself.
func (b *Breaker) Subscribe(ctx context.Context, channels ...string) (sub Subscription, err error) {
	err = b.breaker.DoWithin(ctx, 10*b.opts.Timeout, func(ctx context.Context) error {
		sub, err = b.backend.Subscribe(ctx, channels...)
		return err
	})
	return sub, err
}
