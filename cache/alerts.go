package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
)

// alertsChannel carries inventory alerts between server instances, under the backend's
// prefix.
const alertsChannel = "alerts"

// alertBuffer is how many alerts a subscriber may have waiting before it loses some.
const alertBuffer = 64

// alertMemory is how many alert ids an instance remembers to drop redeliveries: the change
// feed redelivers a batch within seconds, far fewer alerts than this.
const alertMemory = 10_000

// AlertsConsumer names the inventory alerts' consumer of the change feed.
const AlertsConsumer = "alerts"

// Alerts delivers inventory alerts to the subscribers of every server instance. Publish
// sends alerts once on the backend's pub/sub (Redis for a fleet, process memory for a single
// instance); the Alerts of each instance, subscribed there by Run, hands them to its own
// subscribers. A subscriber with alertBuffer alerts waiting loses the next ones, and the
// alert it gets after that carries Lagged: publishing and the other subscribers never wait
// for a slow one. The change feed delivers at least once, so an alert can be published
// twice; each instance remembers the ids of the last alertMemory alerts it delivered and
// drops a repeat, so that a subscriber sees each alert once.
type Alerts struct {
	backend Backend
	log     *slog.Logger
	live    atomic.Bool

	mu      sync.Mutex
	subs    map[*alertSub]struct{}
	seen    map[string]struct{} // ids of the alerts delivered lately
	order   []string            // seen, oldest first
	stopped bool                // Run has returned: subscriptions end at once
}

// alertSub is one subscriber. Its fields other than ch are guarded by Alerts.mu.
type alertSub struct {
	match  func(*model.InventoryAlert) bool
	ch     chan *model.InventoryAlert
	lagged bool
}

// NewAlerts returns the alerts of this instance on backend. Start its Run at boot.
func NewAlerts(backend Backend, log *slog.Logger) *Alerts {
	return &Alerts{backend: backend, log: log, subs: make(map[*alertSub]struct{}), seen: make(map[string]struct{})}
}

// Live reports whether Run is subscribed, so that alerts published now reach this instance.
func (a *Alerts) Live() bool { return a.live.Load() }

// Subscribe returns the alerts that match, from now until ctx is done or Run returns, when
// the channel is closed.
func (a *Alerts) Subscribe(ctx context.Context, match func(*model.InventoryAlert) bool) <-chan *model.InventoryAlert {
	s := &alertSub{match: match, ch: make(chan *model.InventoryAlert, alertBuffer)}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		close(s.ch)
		return s.ch
	}
	a.subs[s] = struct{}{}
	context.AfterFunc(ctx, func() { a.unsubscribe(s) })
	return s.ch
}

func (a *Alerts) unsubscribe(s *alertSub) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.subs[s]; ok {
		delete(a.subs, s)
		close(s.ch)
	}
}

// Publish sends alerts to the subscribers of every instance, in one message.
func (a *Alerts) Publish(ctx context.Context, alerts []model.InventoryAlert) error {
	payload, err := json.Marshal(alerts)
	if err != nil {
		return fmt.Errorf("encode alerts: %w", err)
	}
	return a.backend.Publish(ctx, alertsChannel, payload)
}

// Run receives the alerts published by every instance and hands them to this instance's
// subscribers until ctx is done, then ends every subscription. It subscribes again after
// every failure (a Redis reconnect).
func (a *Alerts) Run(ctx context.Context) error {
	defer a.stop()
	keepSubscribed(ctx, a.backend, []string{alertsChannel}, a.log,
		"inventory alerts", "not subscribed, alerts are lost until it is",
		func(sub Subscription) error { return a.consume(ctx, sub) })
	return ctx.Err()
}

// consume delivers the alerts of sub until it breaks or ctx is done. Subscribers that were
// there before sub may have missed alerts while there was no subscription: their next
// alert says lagged.
func (a *Alerts) consume(ctx context.Context, sub Subscription) error {
	a.lagAll()
	a.live.Store(true)
	defer a.live.Store(false)
	for {
		msg, err := sub.Receive(ctx)
		if err != nil {
			return err
		}
		var alerts []model.InventoryAlert
		if err := json.Unmarshal(msg.Payload, &alerts); err != nil {
			a.log.Warn("inventory alerts: malformed message", "err", err)
			continue
		}
		a.deliver(alerts)
	}
}

func (a *Alerts) deliver(alerts []model.InventoryAlert) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, alert := range alerts {
		if a.delivered(alert.ID) {
			continue
		}
		for s := range a.subs {
			s.offer(alert)
		}
	}
}

// delivered reports whether the alert with id was delivered lately, and remembers it. The
// caller holds a.mu.
func (a *Alerts) delivered(id string) bool {
	if _, ok := a.seen[id]; ok {
		return true
	}
	a.seen[id] = struct{}{}
	a.order = append(a.order, id)
	if len(a.order) > alertMemory {
		delete(a.seen, a.order[0])
		a.order = a.order[1:]
	}
	return false
}

// offer queues a copy of alert for s if it matches, without waiting: with the buffer full,
// the alert is dropped and the next one queued says so. The caller holds Alerts.mu.
func (s *alertSub) offer(alert model.InventoryAlert) {
	if !s.match(&alert) {
		return
	}
	alert.Lagged = s.lagged
	select {
	case s.ch <- &alert:
		s.lagged = false
	default:
		s.lagged = true
	}
}

func (a *Alerts) lagAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for s := range a.subs {
		s.lagged = true
	}
}

// stop ends every subscription, now and to come.
func (a *Alerts) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	for s := range a.subs {
		delete(a.subs, s)
		close(s.ch)
	}
}

// stockChanged is the payload of an "inventory" "stock.changed" outbox event.
type stockChanged struct {
	WarehouseID string `json:"warehouse_id"`
	Before      int    `json:"available_before"`
	After       int    `json:"available_after"`
	Threshold   int    `json:"low_stock_threshold"`
}

// Consumer is the alerts' reader of the change feed: it turns the committed stock changes
// that cross a threshold into alerts and publishes them, a batch in one message. Only
// committed changes reach the outbox, so a rolled-back change never alerts.
func (a *Alerts) Consumer() feed.Consumer {
	return feed.Consumer{Name: AlertsConsumer, Handle: a.handle}
}

func (a *Alerts) handle(ctx context.Context, events []model.OutboxEvent) error {
	var alerts []model.InventoryAlert
	for _, e := range events {
		if e.Aggregate != "inventory" || e.Kind != "stock.changed" {
			continue
		}
		var c stockChanged
		if err := json.Unmarshal(e.Payload, &c); err != nil {
			// Retrying the batch would not mend it: skip the event, loudly.
			a.log.Error("inventory alerts: malformed stock change", "outbox_id", e.ID, "err", err)
			continue
		}
		if kind, ok := model.StockAlert(c.Before, c.After, c.Threshold); ok {
			alerts = append(alerts, model.InventoryAlert{ID: strconv.FormatInt(e.ID, 10), Kind: kind, ProductID: e.AggregateID,
				WarehouseID: c.WarehouseID, Available: c.After, At: e.CreatedAt})
		}
	}
	if len(alerts) == 0 {
		return nil
	}
	return a.Publish(ctx, alerts)
}
