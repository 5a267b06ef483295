package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// The channels of the Bus, under the backend's prefix.
const (
	busInvalidations = "cache:invalidate"
	busFills         = "cache:fill"
)

// How long the Bus (and Alerts) wait before subscribing again after a failure: doubling from
// the first to the second bound.
const (
	busRetryMin = 50 * time.Millisecond
	busRetryMax = 2 * time.Second
)

// busNotice is the payload of both channels: some ids of a keyspace were invalidated or
// filled.
type busNotice struct {
	Keyspace string   `json:"s"`
	IDs      []string `json:"ids"`
}

// busMember is a cache with an L1 tier that the Bus keeps consistent.
type busMember interface {
	dropL1(ids []string)
	flushL1()
}

// Bus carries the messages between the ReadThrough caches of every server instance on a
// backend's pub/sub: invalidations, which drop keys from every L1 tier, and fill
// notifications, which wake the callers waiting for another holder's load. One Bus serves
// all the caches of a process; Run keeps its subscription alive.
//
// Until Run has subscribed, and whenever the subscription is broken, the L1 tiers are
// bypassed (an invalidation could be missed) and waiters fall back to polling the backend;
// each new subscription first empties the L1 tiers.
type Bus struct {
	backend Backend
	log     *slog.Logger
	live    atomic.Bool

	mu      sync.Mutex
	members map[string][]busMember            // by keyspace
	watches map[string]map[*busWatch]struct{} // by cache key
}

// NewBus returns a Bus on backend that logs to log. Start its Run at boot.
func NewBus(backend Backend, log *slog.Logger) *Bus {
	return &Bus{
		backend: backend,
		log:     log,
		members: make(map[string][]busMember),
		watches: make(map[string]map[*busWatch]struct{}),
	}
}

// Backend returns the backend the Bus and its caches use.
func (b *Bus) Backend() Backend { return b.backend }

// Live reports whether the Bus is subscribed, so that invalidations reach this process.
func (b *Bus) Live() bool { return b.live.Load() }

// Run subscribes to the bus channels and dispatches their messages until ctx is done,
// subscribing again after every failure, with a capped backoff while the backend is down.
func (b *Bus) Run(ctx context.Context) error {
	keepSubscribed(ctx, b.backend, []string{busInvalidations, busFills}, b.log,
		"cache bus", "not subscribed, L1 off and waiters polling until it is",
		func(sub Subscription) error { return b.consume(ctx, sub) })
	return ctx.Err()
}

// keepSubscribed subscribes to channels on backend and hands each subscription to consume
// until ctx is done, subscribing again whenever Subscribe fails or consume returns (the
// subscription broke), with a capped backoff while the backend is down. It logs the first
// failure of an outage as "name: down" and the recovery. The subscription is closed when
// ctx is done, which ends a consume blocked in Receive, and when consume returns.
func keepSubscribed(ctx context.Context, backend Backend, channels []string, log *slog.Logger, name, down string, consume func(Subscription) error) {
	retry, failing := busRetryMin, false
	for {
		sub, err := backend.Subscribe(ctx, channels...)
		if err == nil {
			retry = busRetryMin
			if failing {
				log.Info(name + ": subscribed again")
				failing = false
			}
			stop := context.AfterFunc(ctx, func() { _ = sub.Close() })
			err = consume(sub)
			stop()
			_ = sub.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			log.Warn(name+": "+down, "err", err)
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, busRetryMax)
	}
}

// consume dispatches the messages of sub until it breaks or ctx is done.
func (b *Bus) consume(ctx context.Context, sub Subscription) error {
	defer b.live.Store(false)
	b.goLive()
	for {
		msg, err := sub.Receive(ctx)
		if err != nil {
			return err
		}
		b.dispatch(msg)
	}
}

// goLive empties every L1 tier, which may hold keys whose invalidation was missed while
// there was no subscription, wakes every waiter to look again, then turns the L1 tiers on.
func (b *Bus) goLive() {
	b.mu.Lock()
	for _, ms := range b.members {
		for _, m := range ms {
			m.flushL1()
		}
	}
	for _, ws := range b.watches {
		for w := range ws {
			w.signal()
		}
	}
	b.mu.Unlock()
	b.live.Store(true)
}

func (b *Bus) dispatch(msg Message) {
	var n busNotice
	if err := json.Unmarshal(msg.Payload, &n); err != nil {
		b.log.Warn("cache bus: malformed message", "channel", msg.Channel, "err", err)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch msg.Channel {
	case busInvalidations:
		for _, m := range b.members[n.Keyspace] {
			m.dropL1(n.IDs)
		}
	case busFills:
		for _, id := range n.IDs {
			for w := range b.watches[rtKey(n.Keyspace, id)] {
				w.signal()
			}
		}
	}
}

// register makes the Bus keep m's L1 tier consistent with the invalidations of keyspace.
func (b *Bus) register(keyspace string, m busMember) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.members[keyspace] = append(b.members[keyspace], m)
}

// publish tells every server instance that ids of keyspace were invalidated or filled.
func (b *Bus) publish(ctx context.Context, channel, keyspace string, ids []string) error {
	payload, err := json.Marshal(busNotice{Keyspace: keyspace, IDs: ids})
	if err != nil {
		return fmt.Errorf("encode notice: %w", err)
	}
	return b.backend.Publish(ctx, channel, payload)
}

// busWatch is a caller waiting for the fill of some cache keys.
type busWatch struct {
	bus  *Bus
	keys []string
	ch   chan struct{} // one pending signal: several fills wake the waiter once
}

// watch registers a waiter for fills of keys. Register before looking at the backend, so
// that a fill between the look and the wait is not missed.
func (b *Bus) watch(keys []string) *busWatch {
	w := &busWatch{bus: b, keys: keys, ch: make(chan struct{}, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		ws := b.watches[k]
		if ws == nil {
			ws = make(map[*busWatch]struct{})
			b.watches[k] = ws
		}
		ws[w] = struct{}{}
	}
	return w
}

func (w *busWatch) signal() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

// wait blocks until a fill of one of the keys is announced, d has passed or ctx is done. It
// reports whether a fill notification ended the wait.
func (w *busWatch) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.ch:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// stop unregisters the waiter.
func (w *busWatch) stop() {
	b := w.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range w.keys {
		delete(b.watches[k], w)
		if len(b.watches[k]) == 0 {
			delete(b.watches, k)
		}
	}
}
