package feed_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/supervisor"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fastOptions make relays poll and retry quickly.
func fastOptions() feed.Options {
	return feed.Options{Poll: 100 * time.Millisecond, Heartbeat: 100 * time.Millisecond, Log: quiet}
}

// collector is a consumer that records what it is handed.
type collector struct {
	mu     sync.Mutex
	events []model.OutboxEvent
	fail   func([]model.OutboxEvent) error // when set, may refuse a batch
}

func (c *collector) handle(_ context.Context, events []model.OutboxEvent) error {
	if c.fail != nil {
		if err := c.fail(events); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, events...)
	return nil
}

func (c *collector) got() []model.OutboxEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]model.OutboxEvent(nil), c.events...)
}

// waitFor waits until n events have arrived and returns them.
func (c *collector) waitFor(t *testing.T, n int) []model.OutboxEvent {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		if got := len(c.got()); got < n {
			return fmt.Errorf("%d of %d events delivered", got, n)
		}
		return nil
	})
	return c.got()
}

// eventually polls check until it passes, failing t with its last error after limit.
func eventually(t *testing.T, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run starts workers under a supervisor with a short backoff; they stop when t ends or when
// the returned function is called.
func run(t *testing.T, workers ...func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	g := supervisor.New(ctx, supervisor.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Log: log})
	for i, w := range workers {
		g.Go(fmt.Sprint("worker-", i), w)
	}
	stop = sync.OnceFunc(func() { cancel(); g.Wait() })
	t.Cleanup(stop)
	return stop
}

func newFeed(t *testing.T, opts feed.Options) (*feed.Feed, *pgxpool.Pool) {
	t.Helper()
	pool := dbtest.New(t)
	return feed.New(pool, opts), pool
}

// relay registers c's consumer and starts its relay.
func relay(t *testing.T, f *feed.Feed, name string, c *collector) (stop func()) {
	t.Helper()
	if err := f.Register(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return run(t, f.Relay(feed.Consumer{Name: name, Handle: c.handle}))
}

// emit commits one event per entity in one transaction, each at version.
func emit(t *testing.T, pool *pgxpool.Pool, version int, entities ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := pool.Exec(ctx, `
INSERT INTO outbox (aggregate, aggregate_id, kind, version)
SELECT 'thing', e, 'thing.changed', $2 FROM unnest($1::text[]) AS e`, entities, version)
	if err != nil {
		t.Fatalf("emit: %v; %s", err, sessions(t, pool))
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var n int
	if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v; %s", sql, err, sessions(t, pool))
	}
	return n
}

func describe(events []model.OutboxEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s@%d", e.AggregateID, e.Version)
	}
	return out
}

func TestRelayDeliversCommittedEventsInOrder(t *testing.T) {
	f, pool := newFeed(t, fastOptions())
	c := &collector{}
	relay(t, f, "test", c)
	ctx := context.Background()

	emit(t, pool, 1, "a")
	emit(t, pool, 2, "a")
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (aggregate, aggregate_id, kind, version) VALUES ('thing', 'rolled-back', 'x', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	emit(t, pool, 1, "b")

	got := describe(c.waitFor(t, 3))
	if want := []string{"a@1", "a@2", "b@1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v; want %v", got, want)
	}
	eventually(t, 5*time.Second, func() error {
		if n := count(t, pool, `SELECT count(*) FROM outbox_pending`); n != 0 {
			return fmt.Errorf("%d events still queued", n)
		}
		return nil
	})
	if n := len(c.got()); n != 3 {
		t.Errorf("delivered %d events in all; want 3 (the rolled-back one never)", n)
	}
}

// A transaction that commits after a later one must not have its event skipped.
func TestRelayDoesNotSkipLateCommits(t *testing.T) {
	f, pool := newFeed(t, fastOptions())
	c := &collector{}
	relay(t, f, "test", c)
	ctx := context.Background()

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Exec(ctx, `INSERT INTO outbox (aggregate, aggregate_id, kind, version) VALUES ('thing', 'slow', 'x', 1)`); err != nil {
		t.Fatal(err)
	}
	emit(t, pool, 1, "fast") // a larger outbox id, committed first
	c.waitFor(t, 1)
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	events := c.waitFor(t, 2)
	if events[1].AggregateID != "slow" || events[1].ID >= events[0].ID {
		t.Errorf("second event: %s with id %d after id %d; want the late commit with the smaller id", events[1].AggregateID, events[1].ID, events[0].ID)
	}
}

// A failing handler gets the same batch again; nothing is lost.
func TestRelayRetriesFailedBatches(t *testing.T) {
	f, pool := newFeed(t, fastOptions())
	var failures atomic.Int32
	c := &collector{fail: func([]model.OutboxEvent) error {
		if failures.Add(1) <= 2 {
			return errors.New("search engine unavailable")
		}
		return nil
	}}
	relay(t, f, "test", c)
	emit(t, pool, 1, "retried")
	if got := describe(c.waitFor(t, 1)); fmt.Sprint(got) != "[retried@1]" {
		t.Errorf("delivered %v; want [retried@1]", got)
	}
	if n := failures.Load(); n != 3 {
		t.Errorf("handler calls: %d; want 2 refused and 1 accepted", n)
	}
}

// When the delivery fails to commit after the handler applied the batch, the batch comes
// again: handlers see redeliveries and must make them harmless.
func TestFailedCommitRedeliversTheBatch(t *testing.T) {
	var commits atomic.Int32
	opts := fastOptions()
	opts.BeforeCommit = func(string, []model.OutboxEvent) error {
		if commits.Add(1) == 1 {
			return errors.New("connection lost at commit")
		}
		return nil
	}
	f, pool := newFeed(t, opts)
	c := &collector{}
	relay(t, f, "test", c)
	emit(t, pool, 1, "x", "y")
	got := describe(c.waitFor(t, 4))
	if want := []string{"x@1", "y@1", "x@1", "y@1"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handled %v; want the batch twice: %v", got, want)
	}
	eventually(t, 5*time.Second, func() error {
		if n := count(t, pool, `SELECT count(*) FROM outbox_pending`); n != 0 {
			return fmt.Errorf("%d events still queued", n)
		}
		return nil
	})
}
