package feed_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
)

// batchRecorder is a slow consumer that remembers its batches.
type batchRecorder struct {
	mu      sync.Mutex
	batches [][]model.OutboxEvent
}

func (b *batchRecorder) handle(_ context.Context, events []model.OutboxEvent) error {
	time.Sleep(10 * time.Millisecond) // an engine's bulk request
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches = append(b.batches, events)
	return nil
}

func (b *batchRecorder) all() (batches [][]model.OutboxEvent, events []model.OutboxEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, batch := range b.batches {
		events = append(events, batch...)
	}
	return append([][]model.OutboxEvent(nil), b.batches...), events
}

// A change committed after a bulk change is handled beside the bulk backlog, not after it,
// and brings along the bulk change's older events of the same entity.
func TestSingleChangeOvertakesBulkBacklog(t *testing.T) {
	f, pool := newFeed(t, fastOptions())
	ctx := context.Background()
	if err := f.Register(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	bulk := make([]string, 3000)
	for i := range bulk {
		bulk[i] = fmt.Sprintf("bulk-%04d", i)
	}
	bulk = append(bulk, "shared") // the last of the transaction: in the bulk lane
	emit(t, pool, 1, bulk...)
	emit(t, pool, 2, "shared")
	emit(t, pool, 1, "single")

	rec := &batchRecorder{}
	run(t, f.Relay(feed.Consumer{Name: "test", Handle: rec.handle}))
	eventually(t, time.Minute, func() error {
		if _, events := rec.all(); len(events) < len(bulk)+2 {
			return fmt.Errorf("%d of %d events delivered", len(events), len(bulk)+2)
		}
		return nil
	})

	batches, events := rec.all()
	before := 0 // events handled before single@1's batch
	for _, batch := range batches {
		got := describe(batch)
		if !slices.Contains(got, "single@1") {
			before += len(batch)
			continue
		}
		if len(got) != 103 || got[len(got)-1] != "single@1" {
			t.Errorf("single@1's batch: %d events ending with %s; want the 100 fast events of the bulk transaction, shared@1, shared@2 and single@1",
				len(got), got[len(got)-1])
		}
		break
	}
	if before > 250 {
		t.Errorf("%d events were handled before single@1; want at most one bulk batch (250) beside it", before)
	}
	// Every entity's events arrive in version order, each exactly once.
	last := map[string]int64{}
	for _, e := range events {
		if e.Version <= last[e.AggregateID] {
			t.Fatalf("%s@%d delivered after version %d", e.AggregateID, e.Version, last[e.AggregateID])
		}
		last[e.AggregateID] = e.Version
	}
	if len(events) != len(bulk)+2 {
		t.Errorf("delivered %d events; want %d", len(events), len(bulk)+2)
	}
}

// The lanes are per transaction: many small statements in one transaction are bulk too.
func TestLaneCountsEventsPerTransaction(t *testing.T) {
	f, pool := newFeed(t, fastOptions())
	ctx := context.Background()
	if err := f.Register(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 150 {
		if _, err := tx.Exec(ctx, `INSERT INTO outbox (aggregate, aggregate_id, kind, version) VALUES ('thing', $1, 'x', 1)`, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	emit(t, pool, 1, "next") // a new transaction starts counting again
	fast := count(t, pool, `SELECT count(*) FROM outbox_pending WHERE NOT bulk`)
	slow := count(t, pool, `SELECT count(*) FROM outbox_pending WHERE bulk`)
	if fast != 101 || slow != 50 {
		t.Errorf("fast lane %d, bulk lane %d; want 101 and 50", fast, slow)
	}
}

// With both lanes busy on the same entities (single changes landing on entities of a bulk
// change still in flight), every entity's events still arrive once each, in order.
func TestLanesKeepEveryEntityInOrder(t *testing.T) {
	opts := fastOptions()
	opts.BatchSize, opts.BulkBatchSize = 20, 50
	f, pool := newFeed(t, opts)
	if err := f.Register(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	rec := &batchRecorder{}
	run(t, f.Relay(feed.Consumer{Name: "test", Handle: rec.handle}))
	entities := make([]string, 1000)
	for i := range entities {
		entities[i] = fmt.Sprintf("x%03d", i)
	}
	emit(t, pool, 1, entities...)
	rng := rand.New(rand.NewPCG(3, 4))
	version := map[string]int{}
	for range 150 {
		e := entities[rng.IntN(len(entities))]
		version[e] = max(version[e], 1) + 1
		emit(t, pool, version[e], e)
	}
	want := len(entities) + 150
	eventually(t, time.Minute, func() error {
		if _, events := rec.all(); len(events) < want {
			return fmt.Errorf("%d of %d events delivered", len(events), want)
		}
		return nil
	})
	_, events := rec.all()
	last := map[string]int64{}
	for _, e := range events {
		if e.Version != last[e.AggregateID]+1 {
			t.Fatalf("%s@%d delivered after version %d", e.AggregateID, e.Version, last[e.AggregateID])
		}
		last[e.AggregateID] = e.Version
	}
	if len(events) != want {
		t.Errorf("delivered %d events; want %d, each once", len(events), want)
	}
}
