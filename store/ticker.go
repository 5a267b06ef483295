package store

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/homegoods/storefront/graph/model"
)

// SalesTicker polls the running sales figures while anyone listens and hands every change
// to the listeners. One poll serves all the listeners of an instance; a listener that reads
// slowly misses intermediate snapshots, never the latest.
type SalesTicker struct {
	store *Store
	every time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	subs    map[chan *model.SalesTick]struct{}
	last    *model.SalesTick
	polling bool
}

// NewSalesTicker returns a ticker that polls every every while it has listeners.
func (s *Store) NewSalesTicker(every time.Duration, log *slog.Logger) *SalesTicker {
	return &SalesTicker{store: s, every: every, log: log, subs: map[chan *model.SalesTick]struct{}{}}
}

// Subscribe returns the snapshots until ctx ends, starting with the latest one known.
func (t *SalesTicker) Subscribe(ctx context.Context) <-chan *model.SalesTick {
	ch := make(chan *model.SalesTick, 1)
	t.mu.Lock()
	if t.last != nil {
		ch <- t.last
	}
	t.subs[ch] = struct{}{}
	if !t.polling {
		t.polling = true
		go t.poll(context.WithoutCancel(ctx))
	}
	t.mu.Unlock()
	go func() {
		<-ctx.Done()
		t.mu.Lock()
		delete(t.subs, ch)
		close(ch)
		t.mu.Unlock()
	}()
	return ch
}

// poll runs while there are listeners.
func (t *SalesTicker) poll(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for range timer.C {
		if !t.listening() {
			return
		}
		tick, err := t.store.salesTick(ctx, time.Now())
		if err != nil {
			t.log.Warn("sales ticker", "err", err)
		} else {
			t.publish(tick)
		}
		timer.Reset(t.every)
	}
}

// listening reports whether anyone listens, and otherwise marks the poll as ended.
func (t *SalesTicker) listening() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.polling = len(t.subs) > 0
	return t.polling
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
