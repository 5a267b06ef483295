//go:build fleet

package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/db"
)

// haproxy is a real HAProxy (Debian's, scripts/haproxy.sh) in front of the fleet's instances.
type haproxy struct {
	base, stats string // the load balancer's base URL, and its statistics page
}

// haproxyConfig is the configuration the deployment guide recommends, with checks every
// 200 ms so that the test runs fast (two failed checks take an instance out, a slow check
// on a loaded machine does not): /readyz decides whether an instance gets requests, a
// failed connection is retried on another instance.
const haproxyConfig = `global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    option redispatch
    retries 2
    retry-on conn-failure empty-response
frontend api
    bind 127.0.0.1:%d
    option forwardfor
    default_backend instances
backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 2 rise 2
%s
listen stats
    bind 127.0.0.1:%d
    stats enable
    stats uri /stats
`

// freePort returns a loopback port that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startHAProxy runs HAProxy in front of bases until the test ends, once it sees every
// instance up.
func startHAProxy(t *testing.T, bases []string) *haproxy {
	t.Helper()
	bin := os.Getenv("HAPROXY_BIN")
	if bin == "" {
		t.Fatal("HAPROXY_BIN is not set: run make test-fleet")
	}
	var servers strings.Builder
	for i, base := range bases {
		u, _ := url.Parse(base)
		fmt.Fprintf(&servers, "    server s%d %s check\n", i, u.Host)
	}
	port, statsPort := freePort(t), freePort(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, haproxyConfig, port, servers.String(), statsPort), 0o644); err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, exec.Command(bin, "-db", "-f", cfg), "haproxy")
	h := &haproxy{base: fmt.Sprintf("http://127.0.0.1:%d", port), stats: fmt.Sprintf("http://127.0.0.1:%d/stats;csv", statsPort)}
	for i := range bases {
		h.awaitStatus(t, i, "UP")
	}
	return h
}

// awaitStatus waits until HAProxy gives instance i the status want (UP, DOWN).
func (h *haproxy) awaitStatus(t *testing.T, i int, want string) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("HAProxy to see instance %d %s", i, want), func() bool {
		res, err := http.Get(h.stats)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		rows, err := csv.NewReader(res.Body).ReadAll()
		if err != nil {
			return false
		}
		for _, r := range rows {
			if len(r) > 17 && r[0] == "instances" && r[1] == fmt.Sprintf("s%d", i) {
				return strings.HasPrefix(r[17], want)
			}
		}
		return false
	})
}

// heldJobLocks returns which of the background jobs' advisory locks someone holds in the
// database of pool's env.
func heldJobLocks(t *testing.T, e *alertsEnv) map[db.Lock]int {
	t.Helper()
	// The analytics refresh is TimescaleDB's own scheduler's job here (it leads on plain
	// PostgreSQL only).
	jobs := []db.Lock{db.LockOrderExpiry, db.LockFeedMaintenance,
		db.RelayLock(cache.AlertsConsumer), db.RelayLock(cache.CacheConsumer), db.RelayLock(cache.RankingsConsumer)}
	held := map[db.Lock]int{}
	for _, l := range jobs {
		var n int
		err := e.pool.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			  AND ((classid::bigint << 32) | objid::bigint) = $1`, l.Key()).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		held[l] = n
	}
	return held
}

// everyJobLed fails t unless each background job has exactly one leader, waiting a while
// for leadership to move after an instance stopped.
func everyJobLed(t *testing.T, e *alertsEnv) {
	t.Helper()
	var held map[db.Lock]int
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("job locks held: %v", held)
		}
	})
	waitUntil(t, "one leader for every background job", func() bool {
		held = heldJobLocks(t, e)
		for _, n := range held {
			if n != 1 {
				return false
			}
		}
		return true
	})
}

// Three instances behind HAProxy on one PostgreSQL and one Redis: a price change made
// through the load balancer reaches every instance's cache; an alert reaches subscribers of
// every instance exactly once; a client's rate limit is one budget across the fleet; each
// background job has one leader; and a rolling restart (each instance drained through
// SHUTDOWN_DRAIN and /readyz, stopped, started again) under load fails no request.
func TestFleetBehindHAProxy(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	env["SHUTDOWN_DRAIN"] = "2s"
	// A customer's budget holds 20 expensive queries and regains rate units a second: enough
	// for the rolling restart's load, spread over 200 customers (at 15,000 requests in 15 s on
	// an idle machine, 50 customers' budgets ran dry).
	const expensive = `{ products(first: 20) { edges { node { id sku name } } } }`
	cost, rate := priceOf(t, expensive, nil), 1000
	env["RATE_LIMIT_PER_SECOND"] = strconv.Itoa(rate)
	env["RATE_LIMIT_BURST"] = strconv.Itoa(20 * cost)
	env["TRUSTED_PROXIES"] = "127.0.0.1"
	e := newAlertsEnv(t, 3, env)
	lb := startHAProxy(t, e.bases)
	everyJobLed(t, e)

	// Invalidation: a change through the load balancer reaches every instance.
	id := firstProductID(t, lb.base)
	for _, b := range e.bases {
		price(t, b, id)
	}
	setPrice(t, lb.base, e.token, id, "123.00")
	for i, b := range e.bases {
		waitUntil(t, fmt.Sprintf("instance %d to serve the new price", i), func() bool { return price(t, b, id) == "123.00" })
	}

	// Alerts: a stock change through the load balancer reaches a subscriber of each
	// instance, once.
	row := e.rows[0]
	subs := map[string]<-chan alertResult{}
	for i, base := range e.bases {
		subs[fmt.Sprintf("instance %d", i)] = sseAlerts(t, base, e.token, row.vars())
	}
	time.Sleep(200 * time.Millisecond) // the SSE subscriptions are open once their first byte came; give them a moment
	if _, errs := gql(t, lb.base, e.token, `mutation($p: ID!, $w: ID!) { setStock(productId: $p, warehouseId: $w, quantity: 0, reason: "count") { quantity } }`,
		map[string]any{"p": "gid://storefront/Product/" + row.product, "w": "gid://storefront/Warehouse/" + row.warehouse}); len(errs) > 0 {
		t.Fatal(errs)
	}
	for who, results := range subs {
		if kind, available, _ := next(t, results, who).alert(t); kind != "OUT_OF_STOCK" || available != 0 {
			t.Errorf("%s: got %s, %d; want OUT_OF_STOCK, 0", who, kind, available)
		}
	}
	quiet(t, subs, time.Second)

	// Rate limits: one budget across the fleet. A customer's expensive queries are refused
	// after about 20 (and what the budget regained meanwhile), not 60 (20 on each instance).
	customer := strings.TrimSpace(runCommand(t, env, "token", "--role", "customer", "--customer", "limited"))
	served, began := 0, time.Now()
	for range 100 {
		_, errs := gql(t, lb.base, customer, expensive, nil)
		if len(errs) > 0 {
			if code := errs[0]["extensions"].(map[string]any)["code"]; code != "RATE_LIMITED" {
				t.Fatalf("got %v; want RATE_LIMITED", errs)
			}
			break
		}
		served++
	}
	want := (20*float64(cost) + float64(rate)*time.Since(began).Seconds()) / float64(cost)
	if served < 10 || float64(served) > want+3 {
		t.Errorf("%d expensive queries served through three instances before RATE_LIMITED; want about %.0f, one budget", served, want)
	}

	// A rolling restart under load: no request fails.
	tokens := make([]string, 200)
	for i := range tokens {
		tokens[i] = strings.TrimSpace(runCommand(t, env, "token", "--role", "customer", "--customer", fmt.Sprint("load-", i)))
	}
	l := startLoad(4, func(w, i int) string {
		token := tokens[(w*13+i)%len(tokens)]
		if i%4 == 3 {
			_, failed := request(lb.base, token, `mutation { createCart { cart { id } } }`, nil, nil)
			return failed
		}
		_, failed := request(lb.base, token, priceQuery, map[string]any{"id": id}, nil)
		return failed
	})
	for i, base := range e.bases {
		// Draining: /readyz fails, so that HAProxy takes the instance out, while it still
		// serves what comes.
		stopped := make(chan error, 1)
		go func() { stopped <- e.stops[i]() }()
		waitUntil(t, fmt.Sprintf("instance %d's /readyz to fail as it drains", i), func() bool {
			code, _, _ := get(t, base+"/readyz")
			return code == http.StatusServiceUnavailable
		})
		if _, errs := gql(t, base, tokens[0], priceQuery, map[string]any{"id": id}); len(errs) > 0 {
			t.Errorf("instance %d, draining, refused a request: %v", i, errs)
		}
		lb.awaitStatus(t, i, "DOWN")
		if err := <-stopped; err != nil {
			t.Fatalf("instance %d stopped with %v", i, err)
		}
		restarted := testEnv{}
		for k, v := range env {
			restarted[k] = v
		}
		u, _ := url.Parse(base)
		restarted["HTTP_ADDR"] = u.Host
		e.bases[i], e.stops[i] = startServer(t, restarted)
		lb.awaitStatus(t, i, "UP")
	}
	time.Sleep(500 * time.Millisecond)
	l.end(t, "the rolling restart through the load balancer")
	everyJobLed(t, e)
	setPrice(t, lb.base, e.token, id, "124.00")
	for i, b := range e.bases {
		waitUntil(t, fmt.Sprintf("restarted instance %d to serve the new price", i), func() bool { return price(t, b, id) == "124.00" })
	}
}
