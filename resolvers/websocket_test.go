package resolvers_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
)

// alertsServer is the handler with live inventory alerts, whose subscriptions stay open.
func alertsServer(t *testing.T, opts ...apiOption) (url, token string) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	alerts := cache.NewAlerts(cache.NewMemoryBackend(0), log)
	go alerts.Run(t.Context())
	for !alerts.Live() {
		time.Sleep(5 * time.Millisecond)
	}
	auth := resolvers.NewAuth([]byte(testSecret), resolvers.AuthOptions{})
	cfg := resolvers.Config{
		Catalog: store.New(dbtest.New(t)), Alerts: alerts, Auth: auth, Log: log,
		ComplexityLimit: 10_000, DepthLimit: 12, LoaderWait: time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := httptest.NewServer(resolvers.NewHandler(cfg))
	t.Cleanup(srv.Close)
	token, err := auth.Token(model.RoleMerchandiser, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return "ws" + strings.TrimPrefix(srv.URL, "http"), token
}

type wsMsg = map[string]any

// wsClosedWith plays messages on a new socket of protocol and returns the close code the
// server ended it with (-1 if it stayed open for 10 s).
func wsClosedWith(t *testing.T, url, protocol string, messages ...any) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{protocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, m := range messages {
		if raw, ok := m.(string); ok {
			err = c.Write(ctx, websocket.MessageText, []byte(raw))
		} else {
			err = wsjson.Write(ctx, c, m)
		}
		if err != nil {
			break // closed already: the read below says how
		}
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// graphql-transport-ws's close codes, as its specification (PROTOCOL.md of graphql-ws) says.
func TestGraphQLTransportWSCloseCodes(t *testing.T) {
	url, token := alertsServer(t)
	init := wsMsg{"type": "connection_init", "payload": wsMsg{"Authorization": "Bearer " + token}}
	sub := func(id string) wsMsg {
		return wsMsg{"type": "subscribe", "id": id, "payload": wsMsg{"query": "subscription { inventoryAlerts { kind } }"}}
	}
	cases := []struct {
		name     string
		messages []any
		want     websocket.StatusCode
	}{
		{"no connection_init", nil, 4408},
		{"not JSON", []any{init, "{nope"}, 4400},
		{"a type only servers send", []any{init, wsMsg{"type": "next", "id": "1"}}, 4400},
		{"subscribe without an id", []any{init, wsMsg{"type": "subscribe", "payload": wsMsg{"query": "{ __typename }"}}}, 4400},
		{"a payload that is no object", []any{wsMsg{"type": "connection_init", "payload": 7}}, 4400},
		{"subscribe before connection_init", []any{sub("1")}, 4401},
		{"two connection_init", []any{init, init}, 4429},
		{"a subscriber id in use", []any{init, sub("1"), sub("1")}, 4409},
	}
	for _, c := range cases {
		if got := wsClosedWith(t, url, "graphql-transport-ws", c.messages...); got != c.want {
			t.Errorf("%s: closed with %d; want %d", c.name, got, c.want)
		}
	}
}

// The legacy graphql-ws protocol has no codes of its own: the same ones, after a
// connection_error message.
func TestLegacyGraphQLWSViolations(t *testing.T) {
	url, _ := alertsServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_ = wsjson.Write(ctx, c, wsMsg{"type": "start", "id": "1", "payload": wsMsg{"query": "{ __typename }"}})
	var m struct{ Type string }
	if err := wsjson.Read(ctx, c, &m); err != nil || m.Type != "connection_error" {
		t.Fatalf("start before connection_init: got %q, %v; want connection_error", m.Type, err)
	}
	if _, _, err := c.Read(ctx); websocket.CloseStatus(err) != 4401 {
		t.Errorf("start before connection_init: got %v; want close 4401", err)
	}
	if got := wsClosedWith(t, url, "graphql-ws", wsMsg{"type": "connection_init"}, wsMsg{"type": "connection_init"}); got != 4429 {
		t.Errorf("two connection_init: closed with %d; want 4429", got)
	}
}

// An operation id is free again once its operation ended: after an error, the server says
// nothing more about it, and the id may be used again.
func TestSubscriberIDReusedAfterItsEnd(t *testing.T) {
	url, token := alertsServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	read := func() wsMsg {
		var m wsMsg
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("read: %v", err)
		}
		return m
	}
	_ = wsjson.Write(ctx, c, wsMsg{"type": "connection_init", "payload": wsMsg{"Authorization": "Bearer " + token}})
	if m := read(); m["type"] != "connection_ack" {
		t.Fatalf("got %v; want connection_ack", m)
	}
	for range 2 {
		_ = wsjson.Write(ctx, c, wsMsg{"type": "subscribe", "id": "a", "payload": wsMsg{"query": "subscription { nope }"}})
		if m := read(); m["type"] != "error" || m["id"] != "a" {
			t.Fatalf("invalid subscription: got %v; want an error for a", m)
		}
	}
	// Then a ping: a stray "complete" for a would arrive before the pong.
	_ = wsjson.Write(ctx, c, wsMsg{"type": "ping"})
	if m := read(); m["type"] != "pong" {
		raw, _ := json.Marshal(m)
		t.Errorf("after the errors: got %s; want pong and no complete", raw)
	}
}
