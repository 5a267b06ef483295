// Package breaker is the one way the server stops calling a dependency that is failing:
// a circuit breaker. After consecutive failures it fails calls fast with ErrOpen, so that
// callers take their fallback at once (the database instead of Redis, PostgreSQL search
// instead of Elasticsearch, an unlimited request instead of a rate limit) instead of
// waiting on a dependency that is down; after a cool-down one probe call tests the
// dependency and closes the breaker on success. Log, beside it, says that a dependency
// keeps failing at most once an interval.
//
// It is small and home-made rather than a library's because its users need what circuit
// breaker libraries leave out: a deadline on each call (a hung dependency counts as
// failing), calls that end because their caller gave up counting for nothing, and a clock
// tests can move.
package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOpen is returned without calling the dependency while the breaker is open or its
// probe is under way.
var ErrOpen = errors.New("circuit breaker open")

// State is the state of a Breaker.
type State int32

// The states of a Breaker.
const (
	// Closed lets every call through.
	Closed State = iota
	// Open fails every call at once until the cool-down has passed.
	Open
	// HalfOpen lets one probe through; its outcome closes or reopens the breaker.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// Options tune a Breaker.
type Options struct {
	// Failures is how many consecutive failed calls open the breaker (default 1).
	Failures int
	// CoolDown is how long the breaker stays open before it lets a probe through
	// (default 1s).
	CoolDown time.Duration
	// Timeout bounds each call of Do; 0 leaves calls their caller's deadline only.
	Timeout time.Duration
	// Harmless, when set, tells errors that say nothing about the dependency's health
	// (a query refused as bad input): they count as successes.
	Harmless func(error) bool
	// OnChange, when set, is told every change of state (cause: the failure that opened
	// it), such as to log it. It runs with the breaker locked: it must not call it.
	OnChange func(from, to State, cause error)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Breaker guards calls to one dependency. Its zero value is not usable: use New.
type Breaker struct {
	opts Options

	state    atomic.Int32 // State, read without the lock on every call
	failures atomic.Int32 // consecutive failures while closed
	opens    atomic.Uint64
	probes   atomic.Uint64

	mu       sync.Mutex // serializes state changes
	openedAt time.Time
	probing  bool
}

// New returns a closed breaker.
func New(opts Options) *Breaker {
	if opts.Failures <= 0 {
		opts.Failures = 1
	}
	if opts.CoolDown <= 0 {
		opts.CoolDown = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Breaker{opts: opts}
}

// State returns the breaker's current state.
func (b *Breaker) State() State { return State(b.state.Load()) }

// Opens returns how many times the breaker has opened.
func (b *Breaker) Opens() uint64 { return b.opens.Load() }

// Probes returns how many probe calls the breaker has let through while half-open.
func (b *Breaker) Probes() uint64 { return b.probes.Load() }

// Do runs call within the configured timeout if the breaker allows it, and records the
// outcome; it returns call's error, or ErrOpen without running it.
func (b *Breaker) Do(ctx context.Context, call func(context.Context) error) error {
	return b.DoWithin(ctx, b.opts.Timeout, call)
}

// DoWithin is Do with timeout instead of the configured one (0: none).
func (b *Breaker) DoWithin(ctx context.Context, timeout time.Duration, call func(context.Context) error) error {
	probe, err := b.allow()
	if err != nil {
		return err
	}
	cctx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, timeout)
	}
	err = call(cctx)
	cancel()
	b.record(ctx, probe, err)
	return err
}

// allow lets a call through, reporting whether it is the probe of a half-open breaker.
func (b *Breaker) allow() (probe bool, err error) {
	if b.State() == Closed {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.State() {
	case Closed:
		return false, nil
	case Open:
		if b.opts.Now().Sub(b.openedAt) < b.opts.CoolDown {
			return false, ErrOpen
		}
		b.state.Store(int32(HalfOpen))
		b.changed(Open, HalfOpen, nil)
	}
	if b.probing {
		return false, ErrOpen
	}
	b.probing = true
	b.probes.Add(1)
	return true, nil
}

// record updates the breaker with a call's outcome. A call that ended because its caller
// gave up says nothing about the dependency.
func (b *Breaker) record(ctx context.Context, probe bool, err error) {
	if err != nil && b.opts.Harmless != nil && b.opts.Harmless(err) {
		err = nil
	}
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
		b.open(HalfOpen, err)
	default:
		if int(b.failures.Add(1)) >= b.opts.Failures {
			b.open(Closed, err)
		}
	}
}

// open opens the breaker if it is still in state from: a late failure of a call let
// through before the breaker opened must not cut short a probe.
func (b *Breaker) open(from State, cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.State() != from {
		return
	}
	b.state.Store(int32(Open))
	b.failures.Store(0)
	b.openedAt = b.opts.Now()
	b.probing = false
	b.opens.Add(1)
	b.changed(from, Open, cause)
}

func (b *Breaker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state.Store(int32(Closed))
	b.failures.Store(0)
	b.probing = false
	b.changed(HalfOpen, Closed, nil)
}

func (b *Breaker) changed(from, to State, cause error) {
	if b.opts.OnChange != nil {
		b.opts.OnChange(from, to, cause)
	}
}
