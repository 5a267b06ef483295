// Package supervisor runs the server's background workers (outbox relays, the order-expiry
// job, the analytics refresh, reconcilers, tickers) as one group: a worker that fails or
// panics is logged and started again after a backoff, and Wait returns once every worker
// has returned after the group's context ended. The server waits for the group before it
// closes Redis and the database pool, so no worker ever runs on closed clients.
package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"
)

// Options tune a Group; zero values take the defaults.
type Options struct {
	// MinBackoff is the wait before the first restart of a failed worker (default 1s); each
	// failure in a row doubles it, up to MaxBackoff (default 1m).
	MinBackoff, MaxBackoff time.Duration
	// Healthy is how long a worker must run before its next failure counts as the first in a
	// row again (default 1m).
	Healthy time.Duration
	// OnRestart, when set, is told of every restart (for metrics).
	OnRestart func(worker string)
	Log       *slog.Logger
}

// Group is a set of supervised workers that share one lifetime.
type Group struct {
	ctx  context.Context
	opts Options
	log  *slog.Logger
	wg   sync.WaitGroup
}

// New returns a group whose workers run until ctx ends.
func New(ctx context.Context, opts Options) *Group {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.Healthy <= 0 {
		opts.Healthy = time.Minute
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Group{ctx: ctx, opts: opts, log: log}
}

// Go starts work as the worker called name. A worker runs until the group's context ends:
// returning nil before that means it has finished for good; returning an error or
// panicking gets it restarted after a backoff.
func (g *Group) Go(name string, work func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.supervise(name, work)
	}()
}

// Wait returns when every worker has returned; call it after the group's context ended.
func (g *Group) Wait() { g.wg.Wait() }

func (g *Group) supervise(name string, work func(context.Context) error) {
	log := g.log.With("worker", name)
	backoff := g.opts.MinBackoff
	for {
		began := time.Now()
		err := runOnce(g.ctx, work)
		if g.ctx.Err() != nil {
			return
		}
		if err == nil {
			log.Debug("worker finished")
			return
		}
		if time.Since(began) >= g.opts.Healthy {
			backoff = g.opts.MinBackoff
		}
		wait := jitter(backoff)
		log.Error("worker failed: restarting", "err", err, "in", wait.Round(time.Millisecond))
		if g.opts.OnRestart != nil {
			g.opts.OnRestart(name)
		}
		select {
		case <-time.After(wait):
		case <-g.ctx.Done():
			return
		}
		backoff = min(2*backoff, g.opts.MaxBackoff)
	}
}

// runOnce runs work, turning a panic into an error that carries its stack.
func runOnce(ctx context.Context, work func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return work(ctx)
}

// jitter spreads d by up to a fifth either way, so that instances restarting after the same
// outage do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()-0.5)*0.4*float64(d))
}
