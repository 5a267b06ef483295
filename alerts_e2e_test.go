package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/store"
)

const alertsQuery = `subscription($w: ID, $p: [ID!]) {
  inventoryAlerts(warehouseId: $w, productIds: $p) {
    id kind available lagged at
    product { id name sku description }
    warehouse { id code }
  }
}`

// alertResult is one result of an inventoryAlerts subscription.
type alertResult struct {
	Data struct {
		InventoryAlerts *struct {
			ID        string
			Kind      string
			Available int
			Lagged    bool
			Product   struct{ ID string }
			Warehouse struct{ ID string }
		}
	}
	Errors []struct {
		Message    string
		Extensions struct{ Code string }
	}
}

// alert returns the alert of r, failing t when r has errors instead.
func (r alertResult) alert(t testing.TB) (kind string, available int, lagged bool) {
	t.Helper()
	a := r.Data.InventoryAlerts
	if a == nil {
		t.Fatalf("result: got errors %+v; want an alert", r.Errors)
	}
	return a.Kind, a.Available, a.Lagged
}

// code returns the code of the only error of r.
func (r alertResult) code(t testing.TB) string {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("result: got %+v; want exactly one error", r)
	}
	return r.Errors[0].Extensions.Code
}

// The websocket subprotocols: graphql-transport-ws (the graphql-ws library) and graphql-ws
// (the older subscriptions-transport-ws).
const (
	transportWS = "graphql-transport-ws"
	legacyWS    = "graphql-ws"
)

// wsOpen opens a websocket to the API with protocol and sends connection_init with payload;
// it returns the connection once acknowledged, or why it was refused. tinyBuffers makes the
// client's socket buffers tiny, so that a client that stops reading fills the pipe after a
// few kilobytes rather than megabytes.
func wsOpen(t testing.TB, base, protocol string, payload map[string]any, tinyBuffers bool) (*websocket.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{Subprotocols: []string{protocol}}
	if tinyBuffers {
		dialer := &net.Dialer{Control: tinySocket}
		opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql", opts)
	if err != nil {
		t.Fatalf("dial %s: %v", protocol, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": payload}); err != nil {
		return nil, err
	}
	for {
		var msg struct {
			Type    string
			Payload json.RawMessage
		}
		if err := wsjson.Read(ctx, c, &msg); err != nil {
			return nil, err
		}
		switch msg.Type {
		case "connection_ack":
			return c, nil
		case "connection_error":
			return nil, fmt.Errorf("connection_error %s", msg.Payload)
		}
	}
}

// tinySocket shrinks a socket's receive buffer and segment size before it connects.
func tinySocket(_, _ string, c syscall.RawConn) error {
	var err error
	ctrlErr := c.Control(func(fd uintptr) {
		err = errors.Join(syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048),
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536))
	})
	return errors.Join(ctrlErr, err)
}

// wsSubscribe starts a subscription on an acknowledged connection and returns its results.
// They are handed over one at a time: while the test does not take them, the client reads
// nothing more from the socket, as a stalled browser tab would.
func wsSubscribe(t testing.TB, c *websocket.Conn, protocol string, vars map[string]any) <-chan alertResult {
	t.Helper()
	return wsSubscribeQuery(t, c, protocol, alertsQuery, vars)
}

// wsSubscribeQuery is wsSubscribe with any subscription query; its results are read as
// alerts, so only the alerts query yields them whole.
func wsSubscribeQuery(t testing.TB, c *websocket.Conn, protocol, query string, vars map[string]any) <-chan alertResult {
	t.Helper()
	ctx := t.Context()
	start := map[string]string{transportWS: "subscribe", legacyWS: "start"}[protocol]
	msg := map[string]any{"id": "1", "type": start, "payload": map[string]any{"query": query, "variables": vars}}
	if err := wsjson.Write(ctx, c, msg); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	results := make(chan alertResult)
	go func() {
		completed := false
		defer func() {
			if !completed {
				close(results)
			}
		}()
		for {
			var msg struct {
				Type    string
				Payload json.RawMessage
			}
			if wsjson.Read(ctx, c, &msg) != nil {
				return
			}
			var r alertResult
			switch {
			case completed: // like a real client, read on until the socket closes
				continue
			case msg.Type == "next" || msg.Type == "data":
				_ = json.Unmarshal(msg.Payload, &r)
			case msg.Type == "error":
				_ = json.Unmarshal(msg.Payload, &r.Errors)
			case msg.Type == "ping":
				_ = wsjson.Write(ctx, c, map[string]string{"type": "pong"})
				continue
			case msg.Type == "complete":
				completed = true
				close(results)
				continue
			default: // keep-alives
				continue
			}
			select {
			case results <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return results
}

// wsAlerts subscribes over websocket with the token in connection_init.
func wsAlerts(t testing.TB, base, protocol, token string, vars map[string]any) <-chan alertResult {
	t.Helper()
	c, err := wsOpen(t, base, protocol, map[string]any{"Authorization": "Bearer " + token}, false)
	if err != nil {
		t.Fatalf("%s connection refused: %v", protocol, err)
	}
	return wsSubscribe(t, c, protocol, vars)
}

// sseAlerts subscribes over server-sent events, the token in the Authorization header.
func sseAlerts(t testing.TB, base, token string, vars map[string]any) <-chan alertResult {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": alertsQuery, "variables": vars})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	results := make(chan alertResult)
	go func() {
		defer close(results)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			var r alertResult
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && json.Unmarshal([]byte(data), &r) == nil {
				select {
				case results <- r:
				case <-t.Context().Done():
					return
				}
			}
		}
	}()
	return results
}

// next returns the next result of a subscription, failing t if none comes within a
// generous wait.
func next(t testing.TB, results <-chan alertResult, who string) alertResult {
	t.Helper()
	select {
	case r, ok := <-results:
		if !ok {
			t.Fatalf("%s: the subscription ended", who)
		}
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no result within 20s", who)
	}
	return alertResult{}
}

// quiet fails t if any of the subscriptions yields a result, or ends, within a short wait:
// checking that something does not happen cannot wait for ever.
func quiet(t testing.TB, subs map[string]<-chan alertResult, wait time.Duration) {
	t.Helper()
	ended := map[string]bool{}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for who, results := range subs {
			if ended[who] {
				continue
			}
			select {
			case r, ok := <-results:
				if !ok {
					ended[who] = true
					t.Errorf("%s: the subscription ended; want it open and quiet", who)
				} else {
					t.Errorf("%s: got %+v; want nothing", who, r)
				}
			default:
			}
		}
	}
}

// stockRow is the stock of a product in a warehouse.
type stockRow struct{ product, warehouse string }

func (r stockRow) vars() map[string]any {
	return map[string]any{"w": "gid://storefront/Warehouse/" + r.warehouse, "p": []string{"gid://storefront/Product/" + r.product}}
}

// alertsEnv is a seeded database, servers on it and what the tests need to drive them.
type alertsEnv struct {
	bases []string
	stops []func() error
	token string // a merchandiser's
	pool  *pgxpool.Pool
	store *store.Store
	rows  []stockRow // comfortably stocked, each with its own product
}

// newAlertsEnv starts n servers with env on a seeded database, and waits until alerts flow
// to every one of them.
func newAlertsEnv(t testing.TB, n int, env testEnv) *alertsEnv {
	t.Helper()
	runCommand(t, env, "seed", "--products", "30", "--seed", "3")
	e := &alertsEnv{token: strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))}
	for range n {
		base, stop := startServer(t, env)
		e.bases, e.stops = append(e.bases, base), append(e.stops, stop)
	}
	e.pool = dbtest.Open(t, env["DATABASE_URL"], nil)
	e.store = store.New(e.pool)
	rows, _ := e.pool.Query(t.Context(), `
		SELECT DISTINCT ON (product_id) product_id::text, warehouse_id::text FROM inventory
		WHERE reserved_quantity = 0 AND available_quantity > low_stock_threshold + 5
		ORDER BY product_id, warehouse_id LIMIT 3`)
	var err error
	e.rows, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (r stockRow, err error) {
		return r, row.Scan(&r.product, &r.warehouse)
	})
	if err != nil || len(e.rows) < 3 {
		t.Fatalf("stocked rows: got %d, %v; want 3", len(e.rows), err)
	}
	e.awaitAlerts(t)
	return e
}

// setStock commits a stock change.
func (e *alertsEnv) setStock(t testing.TB, r stockRow, quantity int) {
	t.Helper()
	if _, err := e.store.SetStock(t.Context(), r.product, r.warehouse, quantity, "count", "e2e"); err != nil {
		t.Fatalf("set stock: %v", err)
	}
}

// awaitAlerts flips the stock of the first row, which it takes for itself, until every
// server delivers its alert: then the alerts relay leads, its outbox consumer is registered
// and every server's alerts are subscribed.
func (e *alertsEnv) awaitAlerts(t testing.TB) {
	t.Helper()
	row := e.rows[0]
	e.rows = e.rows[1:]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	waiting := map[int]<-chan alertResult{}
	for i, base := range e.bases {
		c, err := wsOpen(t, base, transportWS, map[string]any{"Authorization": "Bearer " + e.token}, false)
		if err != nil {
			t.Fatal(err)
		}
		context.AfterFunc(ctx, func() { _ = c.CloseNow() })
		waiting[i] = wsSubscribe(t, c, transportWS, row.vars())
	}
	defer func() { // the subscriptions opened here end
		cancel()
		for _, base := range e.bases {
			awaitSubscribers(t, base, 0)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for quantity := 0; len(waiting) > 0; quantity = 20 - quantity {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d servers delivered no alert within 60s", len(waiting), len(e.bases))
		}
		e.setStock(t, row, quantity)
		wait := time.After(time.Second)
	poll:
		for i, results := range waiting {
			select {
			case <-results:
				delete(waiting, i)
			case <-wait:
				break poll
			}
		}
	}
}

// awaitSubscribers waits until the server at base counts n open inventoryAlerts
// subscriptions: a subscription counts once its resolver has subscribed, so a change
// committed after this reaches it, where one committed right after the subscribe message
// may race it.
func awaitSubscribers(t testing.TB, base string, n int) {
	t.Helper()
	open := regexp.MustCompile(`(?m)^storefront_graphql_subscriptions\{field="inventoryAlerts",[^}]*\} (\d+)$`)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, metrics, _ := get(t, base+"/metrics")
		count := 0
		for _, m := range open.FindAllStringSubmatch(metrics, -1) {
			c, _ := strconv.Atoi(m[1])
			count += c
		}
		if count == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d inventoryAlerts subscriptions open after 30s; want %d", base, count, n)
		}
	}
}

// The three transports deliver the alert of a committed stock change; tokens are checked
// at connection and at subscription. The server logs at debug level, so that every
// request goes through the status-recording middleware too.
func TestAlertSubscriptionTransports(t *testing.T) {
	env := newTestEnv(t)
	env["LOG_LEVEL"] = "debug"
	e := newAlertsEnv(t, 1, env)
	base, row := e.bases[0], e.rows[0]
	customer := strings.TrimSpace(runCommand(t, env, "token", "--role", "customer", "--customer", "c-1"))

	subs := map[string]<-chan alertResult{
		transportWS: wsAlerts(t, base, transportWS, e.token, row.vars()),
		legacyWS:    wsAlerts(t, base, legacyWS, e.token, row.vars()),
		"sse":       sseAlerts(t, base, e.token, row.vars()),
	}
	awaitSubscribers(t, base, len(subs))
	e.setStock(t, row, 0)
	for who, results := range subs {
		r := next(t, results, who)
		if kind, available, lagged := r.alert(t); kind != "OUT_OF_STOCK" || available != 0 || lagged {
			t.Errorf("%s: got %s, %d, lagged %v; want OUT_OF_STOCK, 0, not lagged", who, kind, available, lagged)
		}
		if a := r.Data.InventoryAlerts; a.Product.ID != row.vars()["p"].([]string)[0] || a.Warehouse.ID != row.vars()["w"] {
			t.Errorf("%s: got product %s in warehouse %s; want %v", who, a.Product.ID, a.Warehouse.ID, row)
		}
	}

	bad := map[string]any{"Authorization": "Bearer not-a-token"}
	if _, err := wsOpen(t, base, transportWS, bad, false); websocket.CloseStatus(err) != 4403 {
		t.Errorf("%s with a bad token: got %v; want the connection closed with 4403", transportWS, err)
	}
	if _, err := wsOpen(t, base, legacyWS, bad, false); err == nil || !strings.Contains(err.Error(), "connection_error") {
		t.Errorf("%s with a bad token: got %v; want connection_error", legacyWS, err)
	}
	guest, err := wsOpen(t, base, transportWS, nil, false)
	if err != nil {
		t.Fatalf("a guest's connection: %v", err)
	}
	refusals := []struct {
		who     string
		results <-chan alertResult
		want    string
	}{
		{"guest over websocket", wsSubscribe(t, guest, transportWS, row.vars()), "UNAUTHENTICATED"},
		{"customer over websocket", wsAlerts(t, base, legacyWS, customer, row.vars()), "FORBIDDEN"},
		{"guest over SSE", sseAlerts(t, base, "", row.vars()), "UNAUTHENTICATED"},
		{"customer over SSE", sseAlerts(t, base, customer, row.vars()), "FORBIDDEN"},
		{"bad product id", wsAlerts(t, base, transportWS, e.token, map[string]any{"p": []string{"gid://storefront/Brand/x"}}), "BAD_USER_INPUT"},
	}
	for _, c := range refusals {
		if got := next(t, c.results, c.who).code(t); got != c.want {
			t.Errorf("%s: got %s; want %s", c.who, got, c.want)
		}
	}

	// Shutting down ends the subscriptions, so that it need not wait for the streams.
	if err := e.stops[0](); err != nil {
		t.Errorf("shutdown with subscriptions open: %v", err)
	}
	for who, results := range subs {
		select {
		case r, ok := <-results:
			if ok {
				t.Errorf("%s after shutdown: got %+v; want the subscription ended", who, r)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s: still open 20s after shutdown", who)
		}
	}
}

// Two servers on one database and one Redis: a committed stock change alerts each
// subscriber of each server exactly once, and a rolled-back one alerts nobody.
func TestAlertsReachEveryServerOnce(t *testing.T) {
	e := newAlertsEnv(t, 2, withRedis(t, newTestEnv(t), cachetest.URL(t)))
	row := e.rows[0]
	subs := map[string]<-chan alertResult{}
	for i, base := range e.bases {
		subs[fmt.Sprintf("server %d", i)] = wsAlerts(t, base, transportWS, e.token, row.vars())
	}
	for _, base := range e.bases {
		awaitSubscribers(t, base, 1)
	}

	e.setStock(t, row, 0)
	for who, results := range subs {
		if kind, available, _ := next(t, results, who).alert(t); kind != "OUT_OF_STOCK" || available != 0 {
			t.Errorf("%s: got %s, %d; want OUT_OF_STOCK, 0", who, kind, available)
		}
	}
	e.rolledBackStockChange(t, row, 3)
	quiet(t, subs, time.Second)

	// A committed change after the rolled-back one arrives, and is the next alert: the pipe
	// was open while nothing came.
	e.setStock(t, row, 10)
	for who, results := range subs {
		if kind, available, _ := next(t, results, who).alert(t); kind != "BACK_IN_STOCK" || available != 10 {
			t.Errorf("%s: got %s, %d; want BACK_IN_STOCK, 10", who, kind, available)
		}
	}
}

// rolledBackStockChange makes a stock change as the store does, inventory row and outbox
// row in one transaction, then rolls it back.
func (e *alertsEnv) rolledBackStockChange(t *testing.T, r stockRow, quantity int) {
	t.Helper()
	tx, err := e.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.Exec(t.Context(), `
		WITH old AS (
			SELECT available_quantity FROM inventory WHERE product_id = $1 AND warehouse_id = $2 FOR UPDATE
		), changed AS (
			UPDATE inventory SET quantity = $3, version = version + 1 WHERE product_id = $1 AND warehouse_id = $2
			RETURNING available_quantity, low_stock_threshold, version
		)
		INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload)
		SELECT 'inventory', $1, 'stock.changed', c.version, jsonb_build_object('warehouse_id', $2::text,
			'available_before', o.available_quantity, 'available_after', c.available_quantity,
			'low_stock_threshold', c.low_stock_threshold)
		FROM old o, changed c`, r.product, r.warehouse, quantity)
	if err != nil {
		t.Fatalf("stock change: %v", err)
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A subscriber that stops reading delays nobody: the others, on its server and on another,
// get every alert as it comes, and when it reads again it learns that it lost some.
func TestStalledSubscriberLagsAlone(t *testing.T) {
	e := newAlertsEnv(t, 2, withRedis(t, newTestEnv(t), cachetest.URL(t)))
	row := e.rows[0]
	c, err := wsOpen(t, e.bases[0], legacyWS, map[string]any{"Authorization": "Bearer " + e.token}, true)
	if err != nil {
		t.Fatal(err)
	}
	stalled := wsSubscribe(t, c, legacyWS, row.vars()) // graphql-ws: no pong deadline
	active := map[string]<-chan alertResult{
		"its server's other subscriber": wsAlerts(t, e.bases[0], transportWS, e.token, row.vars()),
		"the other server's subscriber": wsAlerts(t, e.bases[1], transportWS, e.token, row.vars()),
	}
	awaitSubscribers(t, e.bases[0], 2)
	awaitSubscribers(t, e.bases[1], 1)

	// Waves of alerts smaller than a subscriber's buffer, each taken by the active
	// subscribers before the next: together far more than the stalled one's socket and
	// buffer hold (a few hundred of these alerts).
	const waves, wave = 20, 32
	for w := range waves {
		for i := range wave {
			e.setStock(t, row, 20*(i%2)) // out of stock, back in stock...
		}
		for who, results := range active {
			for i := range wave {
				want := map[bool]string{true: "OUT_OF_STOCK", false: "BACK_IN_STOCK"}[i%2 == 0]
				if kind, _, lagged := next(t, results, who).alert(t); kind != want || lagged {
					t.Fatalf("%s, wave %d, alert %d: got %s, lagged %v; want %s, not lagged", who, w, i, kind, lagged, want)
				}
			}
		}
	}

	// The stalled subscriber reads again: what its socket and buffer held, then nothing; then
	// a new alert. Some alert after the first loss says lagged.
	backlog, lagged := 0, false
	for drained := false; !drained; {
		select {
		case r := <-stalled:
			_, _, l := r.alert(t)
			backlog, lagged = backlog+1, lagged || l
		case <-time.After(time.Second):
			drained = true
		}
	}
	if backlog == 0 || backlog >= waves*wave {
		t.Fatalf("the stalled subscriber held %d of %d alerts; want some, not all", backlog, waves*wave)
	}
	e.setStock(t, row, 3)
	kind, _, l := next(t, stalled, "the stalled subscriber").alert(t)
	if kind != "LOW_STOCK" || !(lagged || l) {
		t.Errorf("the stalled subscriber: got %s after %d alerts, lagged %v; want LOW_STOCK, lagged", kind, backlog, lagged || l)
	}
}

// Pages of another origin may open a websocket only when CORS_ORIGINS names it.
func TestWebsocketOrigins(t *testing.T) {
	env := newTestEnv(t)
	env["CORS_ORIGINS"] = "https://dash.example.com,https://*.shop.example.com"
	base, _ := startServer(t, env)
	dial := func(origin string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql", &websocket.DialOptions{
			Subprotocols: []string{transportWS}, HTTPHeader: http.Header{"Origin": {origin}}})
		if err == nil {
			_ = c.CloseNow()
		}
		return err
	}
	if err := dial("https://dash.example.com"); err != nil {
		t.Errorf("a listed origin: got %v; want the websocket open", err)
	}
	if err := dial("https://eu.shop.example.com"); err != nil {
		t.Errorf("a wildcard subdomain: got %v; want the websocket open", err)
	}
	for _, origin := range []string{"https://elsewhere.example.org", "http://dash.example.com", "https://shop.example.com"} {
		if err := dial(origin); err == nil {
			t.Errorf("unlisted origin %s: the websocket opened; want it refused", origin)
		}
	}
}
