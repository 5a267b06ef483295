package cache

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// busBreakable is a memory backend whose subscriptions the test can break, as a dropped
// Redis connection would.
type busBreakable struct {
	*MemoryBackend
	mu   sync.Mutex
	subs []Subscription
}

func (b *busBreakable) Subscribe(ctx context.Context, channels ...string) (Subscription, error) {
	s, err := b.MemoryBackend.Subscribe(ctx, channels...)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs = append(b.subs, s)
	return s, err
}

func (b *busBreakable) breakAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.subs {
		_ = s.Close()
	}
}

func (b *busBreakable) subscriptions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func TestBusResubscribesAndFlushesL1(t *testing.T) {
	backend := &busBreakable{MemoryBackend: NewMemoryBackend(0)}
	src := rtNewSource(map[string]string{"a": "v1"})
	opts := ReadThroughOptions{L1Size: 10, L1TTL: time.Hour}
	reader := NewReadThrough(coreStartBus(t, backend), "item", src.load, opts)
	writer := NewReadThrough(coreStartBus(t, backend.MemoryBackend), "item", src.load, opts)
	rtMustGet(t, reader, "a")
	rtMustGet(t, reader, "a")
	if s := reader.Stats(); s.L1Hits != 1 {
		t.Fatalf("L1 hits: got %d; want 1", s.L1Hits)
	}

	backend.breakAll()
	coreEventually(t, 10*time.Second, "the bus subscribed again", func() bool {
		return backend.subscriptions() == 2 && reader.bus.Live()
	})
	// The L1 was flushed: invalidations sent while the bus was down would have been missed.
	if _, hits := reader.l1.lookup([]string{"a"}, map[string]*rtItem{}, time.Now()); hits != 0 {
		t.Errorf("L1 hits after resubscribing: got %d; want the L1 flushed", hits)
	}

	rtMustGet(t, reader, "a")
	src.set("a", "v2")
	if err := writer.Invalidate(coreCtx(t), "a"); err != nil {
		t.Fatal(err)
	}
	coreEventually(t, 10*time.Second, "the new subscription delivering invalidations", func() bool {
		return rtMustGet(t, reader, "a")["a"] == "v2"
	})
}

func TestBusNotLiveBypassesL1(t *testing.T) {
	bus := NewBus(NewMemoryBackend(0), slog.New(slog.DiscardHandler)) // never Run
	src := rtNewSource(map[string]string{"a": "v1"})
	rt := NewReadThrough(bus, "item", src.load, ReadThroughOptions{L1Size: 10})
	rtMustGet(t, rt, "a")
	rtMustGet(t, rt, "a")
	if s := rt.Stats(); s.L1Hits != 0 || s.Hits != 1 {
		t.Errorf("L1 hits, backend hits without a subscription: got %d, %d; want 0, 1", s.L1Hits, s.Hits)
	}
}
