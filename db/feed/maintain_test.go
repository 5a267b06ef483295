package feed_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A consumer that no relay runs stops accumulating: it is retired and its queue dropped.
// When its relay comes back, it is resynced once before it relays again.
func TestIdleConsumerIsRetiredAndResyncedWhenBack(t *testing.T) {
	opts := fastOptions()
	opts.ConsumerTimeout = 300 * time.Millisecond
	f, pool := newFeed(t, opts)
	ctx := context.Background()
	if err := f.Register(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	live := &collector{}
	relay(t, f, "live", live)
	emit(t, pool, 1, "a", "b")
	time.Sleep(500 * time.Millisecond)

	m, err := f.MaintainOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Retired, []string{"idle"}) || m.Dropped != 2 {
		t.Fatalf("maintenance: retired %v, dropped %d; want [idle] (the running relay's consumer kept) and 2", m.Retired, m.Dropped)
	}
	emit(t, pool, 1, "c")
	if n := count(t, pool, `SELECT count(*) FROM outbox_pending WHERE consumer = 'idle'`); n != 0 {
		t.Errorf("a retired consumer got %d events queued; want none", n)
	}
	live.waitFor(t, 3)

	var resyncs atomic.Int32
	back := &collector{}
	run(t, f.Relay(feed.Consumer{Name: "idle", Handle: back.handle, Resync: func(context.Context) error {
		if len(back.got()) > 0 {
			t.Error("resync ran after the relay had handled events")
		}
		resyncs.Add(1)
		return nil
	}}))
	eventually(t, 10*time.Second, func() error {
		if ok, err := f.Registered(ctx, "idle"); err != nil || !ok {
			return fmt.Errorf("consumer not active again (err %v)", err)
		}
		return nil
	})
	emit(t, pool, 2, "a")
	if got := describe(back.waitFor(t, 1)); fmt.Sprint(got) != "[a@2]" {
		t.Errorf("after coming back the consumer got %v; want only what was committed since: [a@2]", got)
	}
	if n := resyncs.Load(); n != 1 {
		t.Errorf("resyncs: %d; want 1", n)
	}
}

// A hundred thousand changes through the feed leave an empty outbox once delivered and
// pruned: nothing grows without bound.
func TestDeliveredEventsArePruned(t *testing.T) {
	opts := fastOptions()
	opts.Log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts.BulkBatchSize = 1000
	opts.Retain = time.Microsecond
	opts.MaintainEvery = 200 * time.Millisecond
	f, pool := newFeed(t, opts)
	a, b := &counter{}, &counter{}
	for name, c := range map[string]*counter{"a": a, "b": b} {
		if err := f.Register(context.Background(), name); err != nil {
			t.Fatal(err)
		}
		run(t, f.Relay(feed.Consumer{Name: name, Handle: c.handle}))
	}
	run(t, f.Maintain)

	const changes, perTx = 100_000, 1000
	peak := 0
	for i := 0; i < changes; i += perTx {
		entities := make([]string, perTx)
		for j := range entities {
			entities[j] = fmt.Sprint(i + j)
		}
		emit(t, pool, 1, entities...)
		peak = max(peak, count(t, pool, `SELECT count(*) FROM outbox`))
	}
	eventually(t, 2*time.Minute, func() error {
		if n := count(t, pool, `SELECT count(*) FROM outbox_pending`); n != 0 {
			return fmt.Errorf("%d events still queued (handled %d and %d of %d)", n, a.n.Load(), b.n.Load(), changes)
		}
		return nil
	})
	if a.n.Load() < changes || b.n.Load() < changes {
		t.Errorf("handled %d and %d events; want at least %d each", a.n.Load(), b.n.Load(), changes)
	}
	eventually(t, 30*time.Second, func() error {
		if n := count(t, pool, `SELECT count(*) FROM outbox`); n != 0 {
			return fmt.Errorf("%d outbox rows left after delivery; sessions: %s", n, sessions(t, pool))
		}
		return nil
	})
	t.Logf("outbox peaked at %d rows while %d changes went through", peak, changes)
}

type counter struct{ n atomic.Int64 }

func (c *counter) handle(_ context.Context, events []model.OutboxEvent) error {
	c.n.Add(int64(len(events)))
	return nil
}

// sessions describes the pool and what the database's sessions are doing, for a failure
// that waited: it reads them on a connection of its own, in case the pool is what waits.
func sessions(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		return "sessions: " + err.Error()
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
SELECT format('[%s %s %s/%s %s: %s]', pid, state, wait_event_type, wait_event, now() - query_start, left(query, 80))
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return "sessions: " + err.Error()
	}
	list, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "sessions: " + err.Error()
	}
	st := pool.Stat()
	return fmt.Sprintf("pool: %d of %d acquired; sessions: %s", st.AcquiredConns(), st.MaxConns(), strings.Join(list, " "))
}
