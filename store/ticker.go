package store

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
)

// SalesTicker polls the running sales figures while anyone listens and hands every change
// to the listeners. One poll serves all the listeners of an instance; a listener that reads
// slowly misses intermediate snapshots, never the latest. It polls in Run, a worker of the
// supervisor: when Run ends (the server shuts down), every subscription ends with it.
type SalesTicker struct {
	store *Store
	every time.Duration
	log   *slog.Logger
	wake  chan struct{} // a listener came

	mu      sync.Mutex
	subs    map[chan *model.SalesTick]struct{}
	last    *model.SalesTick
	stopped bool // Run has returned: subscriptions end at once
}

// NewSalesTicker returns a ticker that polls every every while it has listeners.
func (s *Store) NewSalesTicker(every time.Duration, log *slog.Logger) *SalesTicker {
	return &SalesTicker{store: s, every: every, log: log, wake: make(chan struct{}, 1), subs: map[chan *model.SalesTick]struct{}{}}
}

// Subscribe returns the snapshots until ctx ends or Run returns, when the channel is
// closed, starting with the latest one known.
func (t *SalesTicker) Subscribe(ctx context.Context) <-chan *model.SalesTick {
	ch := make(chan *model.SalesTick, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		close(ch)
		return ch
	}
	if t.last != nil {
		ch <- t.last
	}
	t.subs[ch] = struct{}{}
	select {
	case t.wake <- struct{}{}:
	default:
	}
	context.AfterFunc(ctx, func() { t.unsubscribe(ch) })
	return ch
}

func (t *SalesTicker) unsubscribe(ch chan *model.SalesTick) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.subs[ch]; ok {
		delete(t.subs, ch)
		close(ch)
	}
}

// Run polls every interval while anyone listens, and waits for a listener otherwise, until
// ctx ends; then it ends every subscription, now and to come.
func (t *SalesTicker) Run(ctx context.Context) error {
	defer t.stop()
	for {
		if !t.listening() {
			select {
			case <-t.wake:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		tick, err := t.store.salesTick(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			t.log.Warn("sales ticker", "err", err)
		} else if err == nil {
			t.publish(tick)
		}
		if !db.Sleep(ctx, t.every) {
			return ctx.Err()
		}
	}
}

func (t *SalesTicker) listening() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.subs) > 0
}

func (t *SalesTicker) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	for ch := range t.subs {
		delete(t.subs, ch)
		close(ch)
	}
}

// publish hands tick to every listener when the figures changed, replacing a snapshot a
// listener has not read yet.
func (t *SalesTicker) publish(tick *model.SalesTick) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last != nil && t.last.Today == tick.Today && t.last.ThisHour == tick.ThisHour {
		return
	}
	t.last = tick
	for ch := range t.subs {
		select {
		case <-ch:
		default:
		}
		ch <- tick
	}
}

// salesTick reads today's figures hour by hour: their sum is today, the last is this hour.
func (s *Store) salesTick(ctx context.Context, now time.Time) (*model.SalesTick, error) {
	now = now.UTC()
	midnight := now.Truncate(24 * time.Hour)
	r, err := s.SalesReport(ctx, model.SalesQuery{From: midnight, To: now.Add(time.Nanosecond), Bucket: model.SalesBucketHour})
	if err != nil {
		return nil, err
	}
	tick := &model.SalesTick{At: now, Today: r.Totals}
	if len(r.Series) > 0 {
		points := r.Series[0].Points
		tick.ThisHour = points[len(points)-1].SalesFigures
	}
	return tick, nil
}
