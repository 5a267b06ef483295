package resolvers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homegoods/storefront/resolvers"
)

// Operation names are a bounded label: the persisted operations' names always, then a
// capped number of others, then "other".
func TestOperationLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := newAPI(t, 0, func(c *resolvers.Config) {
		c.Metrics = resolvers.NewMetrics(reg, resolvers.OperationNames("query Known { __typename }")...)
	})
	for i := range 80 {
		a.ok("", fmt.Sprintf("query Made%d { __typename }", i), nil)
	}
	a.ok("", "query Known { __typename }", nil)
	a.ok("", "{ __typename }", nil)
	labels := map[string]bool{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != "storefront_graphql_requests_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" {
					labels[l.GetValue()] = true
				}
			}
		}
	}
	if len(labels) > 53 || !labels["Known"] || !labels["other"] || !labels["anonymous"] || !labels["Made0"] || labels["Made79"] {
		t.Errorf("operation labels: got %d (Known %v, other %v, anonymous %v, Made0 %v, Made79 %v); want at most 50 others, then other",
			len(labels), labels["Known"], labels["other"], labels["anonymous"], labels["Made0"], labels["Made79"])
	}
}

// Open subscriptions are counted by field and transport while they last.
func TestSubscriptionGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics := resolvers.NewMetrics(reg)
	url, token := alertsServer(t, func(c *resolvers.Config) { c.Metrics = metrics })
	open := func() float64 {
		return gauge(t, reg, "storefront_graphql_subscriptions", `field="inventoryAlerts",transport="websocket"`)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = wsjson.Write(ctx, c, wsMsg{"type": "connection_init", "payload": wsMsg{"Authorization": "Bearer " + token}})
	var ack wsMsg
	_ = wsjson.Read(ctx, c, &ack)
	_ = wsjson.Write(ctx, c, wsMsg{"type": "subscribe", "id": "1", "payload": wsMsg{"query": "subscription { inventoryAlerts { kind } }"}})
	waitUntil(t, "the subscription counted", func() bool { return open() == 1 })
	_ = c.Close(websocket.StatusNormalClosure, "")
	waitUntil(t, "the subscription uncounted", func() bool { return open() == 0 })
}

// gauge reads the gauge name{labels} from reg; 0 when it has no such series.
func gauge(t *testing.T, reg *prometheus.Registry, name, labels string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if strings.Join(parts, ",") == labels {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10 s", what)
		}
	}
}
