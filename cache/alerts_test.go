package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/graph/model"
)

// alStart starts the Alerts of one instance on backend and waits until it is subscribed.
// The returned function, also called when t ends, stops it.
func alStart(t testing.TB, backend Backend, log *slog.Logger) (*Alerts, func()) {
	t.Helper()
	a := NewAlerts(backend, log)
	return a, coreRun(t, a.Run, a.Live)
}

func alAll(*model.InventoryAlert) bool { return true }

// alMake returns n alerts of product p, told apart by Available: from, from+1..., and by
// their ids.
func alMake(p string, from, n int) []model.InventoryAlert {
	out := make([]model.InventoryAlert, n)
	for i := range out {
		out[i] = model.InventoryAlert{ID: fmt.Sprint(p, from+i), Kind: model.AlertLowStock, ProductID: p, WarehouseID: "w1",
			Available: from + i, At: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	return out
}

// alNext returns the next alert of ch, failing t if none comes within a generous wait.
func alNext(t *testing.T, ch <-chan *model.InventoryAlert) *model.InventoryAlert {
	t.Helper()
	select {
	case a, ok := <-ch:
		if !ok {
			t.Fatal("the subscription ended")
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no alert within 10s")
	}
	return nil
}

// alQuiet fails t if ch yields an alert within a short wait: checking that something does
// not happen cannot wait for ever.
func alQuiet(t *testing.T, ch <-chan *model.InventoryAlert, what string) {
	t.Helper()
	select {
	case a := <-ch:
		t.Errorf("%s: got %+v; want nothing", what, a)
	case <-time.After(200 * time.Millisecond):
	}
}

func alMustPublish(t *testing.T, a *Alerts, alerts []model.InventoryAlert) {
	t.Helper()
	if err := a.Publish(coreCtx(t), alerts); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// An alert published once reaches every subscriber of every instance once, in order, and
// each subscriber sees only the alerts it matches.
func TestAlertsReachEveryInstance(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		one, _ := alStart(t, newBackend(), coreLogger(t))
		two, _ := alStart(t, newBackend(), coreLogger(t))
		ctx := coreCtx(t)
		subs := []<-chan *model.InventoryAlert{one.Subscribe(ctx, alAll), two.Subscribe(ctx, alAll), two.Subscribe(ctx, alAll)}
		onlyB := one.Subscribe(ctx, func(a *model.InventoryAlert) bool { return a.ProductID == "b" })

		alMustPublish(t, one, append(alMake("a", 1, 2), alMake("b", 3, 1)...))
		for i, ch := range subs {
			for want := 1; want <= 3; want++ {
				if got := alNext(t, ch); got.Available != want || got.Lagged {
					t.Errorf("subscriber %d: got %+v; want available %d, not lagged", i, got, want)
				}
			}
		}
		if got := alNext(t, onlyB); got.ProductID != "b" || got.Available != 3 || got.WarehouseID != "w1" ||
			got.Kind != model.AlertLowStock || !got.At.Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("filtered subscriber: got %+v; want product b's alert", got)
		}
		for i, ch := range append(subs, onlyB) {
			alQuiet(t, ch, fmt.Sprintf("subscriber %d after the last alert", i))
		}
	})
}

// An alert published again (the change feed redelivered its batch) reaches nobody twice, on
// any instance; new alerts still come.
func TestAlertsDropRedeliveries(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		one, _ := alStart(t, newBackend(), coreLogger(t))
		two, _ := alStart(t, newBackend(), coreLogger(t))
		ctx := coreCtx(t)
		subs := []<-chan *model.InventoryAlert{one.Subscribe(ctx, alAll), two.Subscribe(ctx, alAll)}
		alMustPublish(t, one, alMake("a", 1, 2))
		alMustPublish(t, two, alMake("a", 1, 3)) // two again, and a new one
		for i, ch := range subs {
			for want := 1; want <= 3; want++ {
				if got := alNext(t, ch); got.Available != want {
					t.Errorf("subscriber %d: got %+v; want available %d", i, got, want)
				}
			}
			alQuiet(t, ch, fmt.Sprintf("subscriber %d after the redelivery", i))
		}
	})
}

// A subscriber that does not read loses the alerts beyond its buffer, and only it: the next
// alert it gets says so.
func TestAlertsSlowSubscriberLagsAlone(t *testing.T) {
	coreEachBackend(t, func(t *testing.T, newBackend func() Backend) {
		a, _ := alStart(t, newBackend(), coreLogger(t))
		ctx := coreCtx(t)
		slow, fast := a.Subscribe(ctx, alAll), a.Subscribe(ctx, alAll)

		// Batches smaller than the buffer, each read by the fast subscriber before the next.
		const batch, batches = alertBuffer / 2, 4
		for b := range batches {
			alMustPublish(t, a, alMake("p", b*batch, batch))
			for i := range batch {
				if got := alNext(t, fast); got.Available != b*batch+i || got.Lagged {
					t.Fatalf("fast subscriber: got %+v; want available %d, not lagged", got, b*batch+i)
				}
			}
		}
		for i := range alertBuffer {
			if got := alNext(t, slow); got.Available != i || got.Lagged {
				t.Fatalf("slow subscriber's buffered alert %d: got %+v; want available %d, not lagged", i, got, i)
			}
		}
		alQuiet(t, slow, "slow subscriber after its buffer")
		alMustPublish(t, a, alMake("p", 1000, 2))
		if got := alNext(t, slow); got.Available != 1000 || !got.Lagged {
			t.Errorf("slow subscriber after catching up: got %+v; want available 1000, lagged", got)
		}
		if got := alNext(t, slow); got.Lagged {
			t.Errorf("slow subscriber's following alert: got %+v; want not lagged", got)
		}
		if got := alNext(t, fast); got.Available != 1000 || got.Lagged {
			t.Errorf("fast subscriber: got %+v; want available 1000, not lagged", got)
		}
	})
}

// A subscription ends with its context, and every subscription ends when Run returns.
func TestAlertsSubscriptionsEnd(t *testing.T) {
	a, stop := alStart(t, NewMemoryBackend(0), coreLogger(t))
	subCtx, unsubscribe := context.WithCancel(context.Background())
	ended, open := a.Subscribe(subCtx, alAll), a.Subscribe(context.Background(), alAll)
	unsubscribe()
	alClosed(t, ended, "after its context ended")
	stop()
	alClosed(t, open, "after Run returned")
	alClosed(t, a.Subscribe(context.Background(), alAll), "made after Run returned")
}

func alClosed(t *testing.T, ch <-chan *model.InventoryAlert, what string) {
	t.Helper()
	select {
	case a, ok := <-ch:
		if ok {
			t.Errorf("subscription %s: got %+v; want it closed", what, a)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("subscription %s: still open after 10s", what)
	}
}

// When Redis restarts, the alerts subscribe again, say so in the log, and every subscriber's
// next alert says that some may have been lost meanwhile.
func TestAlertsSurviveRedisRestart(t *testing.T) {
	server := cachetest.StartServer(t)
	opt, err := redis.ParseURL(server.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	var logs strings.Builder // read once Run has returned
	a, stop := alStart(t, NewRedisBackend(client, "t:", nil), slog.New(slog.NewTextHandler(&logs, nil)))
	ch := a.Subscribe(coreCtx(t), alAll)

	server.Stop()
	coreEventually(t, 10*time.Second, "the subscription to break", func() bool { return !a.Live() })
	server.Start()
	coreEventually(t, 30*time.Second, "the alerts subscribed again", a.Live)
	alMustPublish(t, a, alMake("p", 7, 1))
	if got := alNext(t, ch); got.Available != 7 || !got.Lagged {
		t.Errorf("after the restart: got %+v; want available 7, lagged", got)
	}
	stop()
	if !strings.Contains(logs.String(), "inventory alerts: subscribed again") {
		t.Errorf("log: got %q; want the resubscription logged", logs.String())
	}
}

// The relay handler publishes an alert for each committed stock change that crosses a
// threshold, and nothing for other events.
func TestAlertsRelayTurnsStockChangesIntoAlerts(t *testing.T) {
	a, _ := alStart(t, NewMemoryBackend(0), coreLogger(t))
	ch := a.Subscribe(coreCtx(t), alAll)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	change := func(id int64, aggregate, kind, product string, payload any) model.OutboxEvent {
		raw, _ := json.Marshal(payload)
		return model.OutboxEvent{ID: id, Aggregate: aggregate, AggregateID: product, Kind: kind, Payload: raw, CreatedAt: at}
	}
	stock := func(before, after, threshold int) map[string]any {
		return map[string]any{"warehouse_id": "w1", "available_before": before, "available_after": after,
			"low_stock_threshold": threshold, "reason": "count"}
	}
	events := []model.OutboxEvent{
		change(1, "inventory", "stock.changed", "p1", stock(10, 4, 5)),  // low
		change(2, "inventory", "stock.changed", "p2", stock(9, 8, 5)),   // no crossing
		change(3, "product", "product.updated", "p3", map[string]any{}), // not stock
		change(4, "inventory", "stock.changed", "p4", "garbage"),        // malformed: skipped
		change(5, "inventory", "stock.changed", "p5", stock(3, 0, 5)),   // out
		change(6, "inventory", "stock.changed", "p6", stock(0, 12, 5)),  // back
	}
	if err := a.Consumer().Handle(coreCtx(t), events); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	want := []model.InventoryAlert{
		{ID: "1", Kind: model.AlertLowStock, ProductID: "p1", WarehouseID: "w1", Available: 4, At: at},
		{ID: "5", Kind: model.AlertOutOfStock, ProductID: "p5", WarehouseID: "w1", Available: 0, At: at},
		{ID: "6", Kind: model.AlertBackInStock, ProductID: "p6", WarehouseID: "w1", Available: 12, At: at},
	}
	for _, w := range want {
		got := *alNext(t, ch)
		if got.At.Equal(w.At) {
			got.At = w.At // the same instant, whatever its decoded location
		}
		if got != w {
			t.Errorf("alert: got %+v; want %+v", got, w)
		}
	}
	alQuiet(t, ch, "after the batch's alerts")
}
