package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// collector records what a relay delivers.
type collector struct {
	mu     sync.Mutex
	events []model.OutboxEvent
	got    chan struct{}
	fail   func([]model.OutboxEvent) error
}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1000)} }

func (c *collector) handle(_ context.Context, events []model.OutboxEvent) error {
	if c.fail != nil {
		if err := c.fail(events); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.events = append(c.events, events...)
	c.mu.Unlock()
	for range events {
		c.got <- struct{}{}
	}
	return nil
}

// waitFor waits until n events have arrived.
func (c *collector) waitFor(t *testing.T, n int) []model.OutboxEvent {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		if len(c.events) >= n {
			out := append([]model.OutboxEvent(nil), c.events...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("relay delivered %d events in 20s; want %d", len(c.events), n)
		}
	}
}

func startRelay(t *testing.T, s *store.Store, consumer string, c *collector) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := s.NewRelay(consumer, c.handle, store.RelayOptions{Poll: 200 * time.Millisecond, Retry: 50 * time.Millisecond}, quiet)
	go func() { defer close(done); _ = r.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return sync.OnceFunc(stop)
}

func createProduct(t *testing.T, s *store.Store, category, sku string) *model.Product {
	t.Helper()
	p, err := s.CreateProduct(context.Background(), model.CreateProductInput{Sku: sku, Slug: ptr(model.Slugify(sku)),
		Name: "Relay " + sku, CategoryID: category, Price: 100, Status: ptr(model.ProductStatusActive)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// registered waits until the consumer is registered, so that the events after it reach it.
func registered(t *testing.T, s *store.Store, consumer string) {
	t.Helper()
	for range 200 {
		if ok, _ := s.ConsumerRegistered(context.Background(), consumer); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("consumer %s never registered", consumer)
}

func TestRelayDeliversCommittedChangesInOrder(t *testing.T) {
	s, pool := newCatalog(t, 0)
	category := anyCategory(t, pool)
	c := newCollector()
	startRelay(t, s, "test", c)
	registered(t, s, "test")

	p := createProduct(t, s, category, "R-1")
	if _, err := s.UpdateProduct(context.Background(), p.ID, model.UpdateProductInput{Price: ptr(model.Cents(200))}); err != nil {
		t.Fatal(err)
	}
	// A rolled-back change is never delivered.
	_, err := s.CreateProduct(context.Background(), model.CreateProductInput{Sku: "R-1", Slug: ptr("r-dup"), Name: "dup",
		CategoryID: category, Price: 1, Status: ptr(model.ProductStatusDraft)})
	wantCode(t, err, model.CodeConflict, "input.sku")
	createProduct(t, s, category, "R-2")

	events := c.waitFor(t, 3)
	var got []string
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s@%d", e.Kind, e.Version))
	}
	want := []string{"product.created@1", "product.updated@2", "product.created@1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v; want %v", got, want)
	}
	time.Sleep(300 * time.Millisecond)
	if n := mustCount(t, pool, `SELECT count(*) FROM outbox_pending`); n != 0 || len(c.events) != 3 {
		t.Errorf("after delivery: %d pending, %d delivered; want 0 and 3", n, len(c.events))
	}
}

// A transaction that commits after a later one must not have its event skipped.
func TestRelayDoesNotSkipLateCommits(t *testing.T) {
	s, pool := newCatalog(t, 0)
	category := anyCategory(t, pool)
	c := newCollector()
	startRelay(t, s, "test", c)
	registered(t, s, "test")
	ctx := context.Background()

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Exec(ctx, `INSERT INTO outbox (aggregate, aggregate_id, kind, version) VALUES ('test', 'slow', 'test.slow', 1)`); err != nil {
		t.Fatal(err)
	}
	createProduct(t, s, category, "FAST-1") // a larger outbox id, committed first
	c.waitFor(t, 1)
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	events := c.waitFor(t, 2)
	if events[1].Kind != "test.slow" || events[1].ID >= events[0].ID {
		t.Errorf("second event: got %s with id %d after id %d; want the late commit with the smaller id", events[1].Kind, events[1].ID, events[0].ID)
	}
}

// A failing handler gets the same batch again; nothing is lost.
func TestRelayRetriesFailedBatches(t *testing.T) {
	s, pool := newCatalog(t, 0)
	category := anyCategory(t, pool)
	c := newCollector()
	var mu sync.Mutex
	failures := 0
	c.fail = func([]model.OutboxEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if failures < 2 {
			failures++
			return errors.New("search engine unavailable")
		}
		return nil
	}
	startRelay(t, s, "test", c)
	registered(t, s, "test")
	createProduct(t, s, category, "RETRY-1")
	if got := c.waitFor(t, 1); got[0].Kind != "product.created" {
		t.Errorf("delivered %v", got)
	}
	if failures != 2 {
		t.Errorf("failures before success: got %d; want 2", failures)
	}
}

// One relay leads; when it dies mid-batch, a standby takes over the same batch.
func TestRelayStandbyTakesOver(t *testing.T) {
	s, pool := newCatalog(t, 0)
	category := anyCategory(t, pool)
	stuck := newCollector()
	entered := make(chan struct{})
	release := make(chan struct{})
	stuck.fail = func([]model.OutboxEvent) error {
		close(entered)
		<-release // the leader dies while it holds the batch
		return errors.New("killed")
	}
	stopLeader := startRelay(t, s, "test", stuck)
	registered(t, s, "test")
	createProduct(t, s, category, "TAKEOVER-1")
	// The standby starts only once the first relay holds the batch: started together, either
	// could lead.
	select {
	case <-entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the first relay did not take the batch in 20s")
	}
	standby := newCollector()
	startRelay(t, s, "test", standby)
	close(release)
	stopLeader()
	createProduct(t, s, category, "TAKEOVER-2")
	events := standby.waitFor(t, 2)
	if events[0].AggregateID == events[1].AggregateID || len(stuck.events) != 0 {
		t.Errorf("standby got %v, dead leader recorded %d; want both products once, by the standby", events, len(stuck.events))
	}
}
