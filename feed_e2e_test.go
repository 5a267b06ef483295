package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/graph/model"
)

// childEnv, set to 1, makes the test binary the storefront server (serveChild), so that a
// test can signal or kill a server process as an operator or a crash would.
const childEnv = "STOREFRONT_E2E_SERVE"

// stallEnv lists consumer=kind pairs: the child stalls a consumer's delivery that holds an
// event of that kind after the handler applied it and before the delivery commits, and
// says "stalled <consumer>" on its standard output.
const stallEnv = "STOREFRONT_E2E_STALL"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(serveChild())
	}
	os.Exit(m.Run())
}

// serveChild is main for a server process started by a test.
func serveChild() int {
	stalls := map[string]string{}
	for _, pair := range strings.Split(os.Getenv(stallEnv), ",") {
		if consumer, kind, ok := strings.Cut(pair, "="); ok {
			stalls[consumer] = kind
		}
	}
	feedFaultHook = func(consumer string, events []model.OutboxEvent) error {
		kind, ok := stalls[consumer]
		if ok && slices.ContainsFunc(events, func(e model.OutboxEvent) bool { return e.Kind == kind }) {
			fmt.Printf("stalled %s\n", consumer)
			select {} // until the test kills the process
		}
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, []string{"serve"}, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "storefront:", err)
		return 1
	}
	return 0
}

// child is a server process started by a test.
type child struct {
	cmd    *exec.Cmd
	base   string
	log    *procLog
	exited chan struct{} // closed when the process has exited; cmd.ProcessState is then set
}

// startChild starts a server process with env (and extra variables) and waits until it
// listens.
func startChild(t *testing.T, env testEnv, extra ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, extra...)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, log: &procLog{grew: make(chan struct{})}, exited: make(chan struct{})}
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Go(func() { c.log.read(r) })
	}
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
	})
	line := c.log.wait(t, "the server to listen", 60*time.Second, func(l logLine) bool { return l.Msg == "listening" })
	c.base = "http://" + line.Addr
	return c
}

// logLine is what the tests read of a server's JSON log line, or of a plain line.
type logLine struct {
	Msg, Addr, Lock, Level string
	Text                   string `json:"-"`
}

// procLog collects a process's output lines.
type procLog struct {
	mu    sync.Mutex
	lines []logLine
	grew  chan struct{} // closed and replaced when a line arrives
}

func (l *procLog) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line logLine
		_ = json.Unmarshal(sc.Bytes(), &line)
		line.Text = sc.Text()
		l.mu.Lock()
		l.lines = append(l.lines, line)
		close(l.grew)
		l.grew = make(chan struct{})
		l.mu.Unlock()
	}
}

// wait returns the first line that matches, waiting up to limit for it.
func (l *procLog) wait(t *testing.T, what string, limit time.Duration, match func(logLine) bool) logLine {
	t.Helper()
	deadline := time.After(limit)
	for seen := 0; ; {
		l.mu.Lock()
		lines, grew := l.lines, l.grew
		l.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if match(lines[seen]) {
				return lines[seen]
			}
		}
		select {
		case <-grew:
		case <-deadline:
			t.Fatalf("no log line of %s within %s; the process said:\n%s", what, limit, l.text())
		}
	}
}

func (l *procLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, line := range l.lines {
		b.WriteString(line.Text + "\n")
	}
	return b.String()
}

// leads waits until the child leads the relay of every consumer.
func (c *child) leads(t *testing.T, consumers ...string) {
	t.Helper()
	for _, consumer := range consumers {
		c.log.wait(t, "leading "+consumer, 30*time.Second, func(l logLine) bool {
			return l.Msg == "leading" && l.Lock == "outbox-relay:"+consumer
		})
	}
}

// SIGTERM with a subscription open on every transport (server-sent events, both websocket
// protocols) for both kinds (inventory alerts, sales ticker) ends them all and the process
// exits 0 within 2 seconds.
func TestShutdownEndsEverySubscription(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	runCommand(t, env, "seed", "--products", "10", "--seed", "4")
	token := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))
	c := startChild(t, env)

	const tickerQuery = `subscription { salesTicker { today { orders } } }`
	streams := map[string]<-chan alertResult{
		"alerts over SSE":                  sseAlerts(t, c.base, token, nil),
		"alerts over graphql-transport-ws": wsAlerts(t, c.base, transportWS, token, nil),
		"alerts over graphql-ws":           wsAlerts(t, c.base, legacyWS, token, nil),
		"ticker over graphql-transport-ws": wsQuery(t, c.base, transportWS, token, tickerQuery),
		"ticker over graphql-ws":           wsQuery(t, c.base, legacyWS, token, tickerQuery),
	}
	ticks := sseTicks(t, c.base, token)
	nextTick(t, ticks) // the ticker answers at once: its stream is open
	for who, results := range streams {
		if strings.Contains(who, "ticker") {
			next(t, results, who)
		}
	}

	began := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server still runs 10s after SIGTERM; it said:\n%s", c.log.text())
	}
	took := time.Since(began)
	t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
	if code := c.cmd.ProcessState.ExitCode(); code != 0 || took > 2*time.Second {
		t.Errorf("exit status %d after %s; want 0 within 2s. The server said:\n%s", code, took.Round(time.Millisecond), c.log.text())
	}
	for who, results := range streams {
		ended(t, who, results)
	}
	ended(t, "ticker over SSE", ticks)
}

// ended fails t unless the stream results ends soon, whatever it still yields.
func ended[T any](t *testing.T, who string, results <-chan T) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-results:
			if !ok {
				return
			}
		case <-deadline:
			t.Errorf("%s: the stream is still open after the server exited", who)
			return
		}
	}
}

// wsQuery opens a websocket with protocol and token and starts the subscription query.
func wsQuery(t *testing.T, base, protocol, token, query string) <-chan alertResult {
	t.Helper()
	c, err := wsOpen(t, base, protocol, map[string]any{"Authorization": "Bearer " + token}, false)
	if err != nil {
		t.Fatalf("%s connection refused: %v", protocol, err)
	}
	return wsSubscribeQuery(t, c, protocol, query, nil)
}

// rankedUnits reads the units a product has sold in the ranking of the whole catalog, from
// the Redis of env.
func rankedUnits(t *testing.T, env testEnv, productID string) float64 {
	t.Helper()
	rdb := redisOf(t, env)
	defer rdb.Close()
	units, err := rdb.ZScore(context.Background(), env["REDIS_PREFIX"]+"rank:{all}:best", productID).Result()
	if errors.Is(err, redis.Nil) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return units
}

// drained waits until the consumers' queues are empty.
func (s *shop) drained(consumers ...string) {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := s.count(`SELECT count(*) FROM outbox_pending WHERE consumer = ANY($1)`, consumers)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d events still queued for %v after 30s", n, consumers)
		}
	}
}

// soldUnits is the truth the rankings follow: the units of a product's orders that are not
// cancelled.
func (s *shop) soldUnits(productID string) float64 {
	s.t.Helper()
	return float64(s.count(`SELECT coalesce(sum(l.quantity), 0) FROM order_lines l JOIN orders o ON o.id = l.order_id
		WHERE l.product_id = $1 AND o.status <> 'CANCELLED'`, productID))
}

func rawID(globalID string) string { return globalID[strings.LastIndex(globalID, "/")+1:] }

// setStock sets a product's stock in the first warehouse through the API.
func (s *shop) setStock(product string, quantity int) {
	s.t.Helper()
	s.must(s.merchandiser, `mutation($p: ID!, $w: ID!, $q: Int!) { setStock(productId: $p, warehouseId: $w, quantity: $q, reason: "count") { quantity } }`,
		map[string]any{"p": product, "w": s.warehouse(), "q": quantity})
}

// warehouse is the global id of the first warehouse.
func (s *shop) warehouse() string {
	s.t.Helper()
	var id string
	if err := s.db.QueryRow(context.Background(), `SELECT id::text FROM warehouses ORDER BY priority LIMIT 1`).Scan(&id); err != nil {
		s.t.Fatal(err)
	}
	return "gid://storefront/Warehouse/" + id
}

// order checks out a guest cart of units of product and returns the order's id.
func (s *shop) order(product string, units int, key string) string {
	s.t.Helper()
	order, code := s.checkout("", s.guestCart(map[string]int{product: units}), key)
	if code != "" {
		s.t.Fatalf("checkout %s: %s", key, code)
	}
	return order["id"].(string)
}

// alertsOnce reads the alerts of results until it has want of them, then fails t if any
// comes twice, or more come within a short wait.
func alertsOnce(t *testing.T, results map[string]<-chan alertResult, want int) {
	t.Helper()
	for who, r := range results {
		seen := map[string]bool{}
		for range want {
			a := next(t, r, who).Data.InventoryAlerts
			if a == nil || seen[a.ID] {
				t.Fatalf("%s: got %+v after %v; want %d distinct alerts", who, a, seen, want)
			}
			seen[a.ID] = true
		}
	}
	quiet(t, results, 1500*time.Millisecond)
}

// When the delivery of every batch fails to commit once after its handler ran, each batch
// is applied twice, and every consumer still ends exact: the rankings count each order
// once, each subscriber sees each alert once, the cache serves the last price, and the
// search index has the last name.
func TestFeedRedeliveryIsExact(t *testing.T) {
	var mu sync.Mutex
	failed := map[string]int{} // batches refused, by consumer
	refused := map[string]bool{}
	feedFaultHook = func(consumer string, events []model.OutboxEvent) error {
		mu.Lock()
		defer mu.Unlock()
		batch := fmt.Sprint(consumer, events[0].ID, len(events))
		if refused[batch] {
			return nil
		}
		refused[batch] = true
		failed[consumer]++
		return errors.New("injected fault: the delivery's commit failed")
	}
	t.Cleanup(func() { feedFaultHook = nil })

	url := elasticURL(t)
	index := fmt.Sprintf("e2e_redelivery_%d", time.Now().UnixNano())
	t.Cleanup(func() { deleteIndices(url, index) })
	s := newShopWith(t, 30, withRedis(t, testEnv{"ELASTICSEARCH_URL": url, "SEARCH_INDEX": index}, cachetest.URL(t)))
	sold, stocked := s.product(1, 100), s.product(2, 10)
	subs := map[string]<-chan alertResult{
		"websocket": wsAlerts(t, s.base, transportWS, s.merchandiser, map[string]any{"p": []string{stocked}}),
		"SSE":       sseAlerts(t, s.base, s.merchandiser, map[string]any{"p": []string{stocked}}),
	}
	awaitSubscribers(t, s.base, len(subs))

	s.order(sold, 3, "redelivered-1")
	s.order(sold, 2, "redelivered-2")
	s.setStock(stocked, 0)  // OUT_OF_STOCK
	s.setStock(stocked, 12) // BACK_IN_STOCK
	price(t, s.base, sold)  // cached
	s.must(s.merchandiser, `mutation($id: ID!) { updateProduct(id: $id, input: {name: "Redelivered Quokka Lamp", price: "123.45"}) { id } }`,
		map[string]any{"id": sold})

	alertsOnce(t, subs, 2)
	s.drained("rankings", "alerts", "cache", "search")
	if got := rankedUnits(t, s.env, rawID(sold)); got != 5 {
		t.Errorf("rankings count %v units; want 5 (two orders, each once)", got)
	}
	if got := price(t, s.base, sold); got != "123.45" {
		t.Errorf("the cache serves %s; want the new price 123.45", got)
	}
	if got := indexedHits(t, s, "redelivered quokka"); got != 1 {
		t.Errorf("the search index finds %v products by the new name; want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	_, metrics, _ := get(t, s.base+"/metrics")
	for _, consumer := range []string{"rankings", "alerts", "cache", "search"} {
		if failed[consumer] == 0 {
			t.Errorf("no delivery to %s was refused: the test did not redeliver", consumer)
		}
		for _, line := range []string{`storefront_feed_backlog{consumer="%s"} 0`, `storefront_feed_consumer_active{consumer="%s"} 1`,
			`storefront_worker_restarts_total{worker="relay:%s"}`} {
			if want := fmt.Sprintf(line, consumer); !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	}
}

// indexedHits counts the products that words find in the search index. PostgreSQL answers
// for a few seconds after the index was built (the breaker opened while it did not exist),
// longer on a loaded machine where the breaker's probes time out: it waits for the index to
// answer.
func indexedHits(t *testing.T, s *shop, words string) float64 {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res := searchResult(t, s, s.merchandiser, map[string]any{"q": words})
		if res["backend"] == "elasticsearch" {
			return res["totalCount"].(float64)
		}
		if time.Now().After(deadline) {
			t.Fatalf("answered by %v for 60s; want elasticsearch", res["backend"])
		}
	}
}

func deleteIndices(url, prefix string) {
	req, _ := http.NewRequest(http.MethodDelete, url+"/"+prefix+"*", nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
}

// Two server processes share the feed: the first leads every relay, applies a batch
// (publishes its alert, counts its order, drops its cache entry) and is killed before the
// delivery commits; the second takes over, redelivers, and every effect is there once.
func TestRelayLeaderKilledMidBatch(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	env["RATE_LIMIT_PER_SECOND"] = "0"
	runCommand(t, env, "seed", "--products", "30", "--seed", "6")
	leader := startChild(t, env, stallEnv+"=rankings=order.placed,alerts=stock.changed,cache=product.updated")
	leader.leads(t, "rankings", "alerts", "cache")
	base, _ := startServer(t, env) // the standby
	s := shopOn(t, env, base)
	sold, stocked := s.product(1, 100), s.product(2, 10)
	subs := map[string]<-chan alertResult{
		"websocket": wsAlerts(t, s.base, transportWS, s.merchandiser, map[string]any{"p": []string{stocked}}),
		"SSE":       sseAlerts(t, s.base, s.merchandiser, map[string]any{"p": []string{stocked}}),
	}
	time.Sleep(200 * time.Millisecond)

	s.setStock(stocked, 0) // the leader publishes OUT_OF_STOCK, then stalls
	price(t, s.base, sold)
	s.order(sold, 3, "killed-1")
	setPrice(t, s.base, s.merchandiser, sold, "77.00")
	for _, consumer := range []string{"alerts", "rankings", "cache"} {
		leader.log.wait(t, "the leader stalling "+consumer, 30*time.Second, func(l logLine) bool { return l.Text == "stalled "+consumer })
	}
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leader.exited

	s.setStock(stocked, 5) // BACK_IN_STOCK, through the new leader
	alertsOnce(t, subs, 2)
	s.drained("rankings", "alerts", "cache")
	if got := rankedUnits(t, env, rawID(sold)); got != 3 {
		t.Errorf("rankings count %v units; want 3: the order once, though both servers applied it", got)
	}
	if got := price(t, s.base, sold); got != "77.00" {
		t.Errorf("the cache serves %s; want 77.00", got)
	}
}

// The rankings follow the orders: a placed order counts once, a cancelled or expired one
// is taken back, and when Redis loses the rankings they are rebuilt from PostgreSQL's
// orders, the seeded history among them.
func TestRankingsFollowTheOrdersExactly(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	env["RATE_LIMIT_PER_SECOND"] = "0"
	env["ORDER_HOLD"], env["ORDER_EXPIRY_INTERVAL"] = "4s", "200ms"
	runCommand(t, env, "seed", "--products", "30", "--seed", "6")
	runCommand(t, env, "seed", "--orders", "300", "--seed", "6")
	base, _ := startServer(t, env)
	s := shopOn(t, env, base)
	p := s.product(1, 100)

	paid := s.order(p, 3, "paid")
	s.must(s.merchandiser, `mutation($id: ID!) { markOrderPaid(id: $id) { status } }`, map[string]any{"id": paid})
	cancelled := s.order(p, 2, "cancelled")
	s.must(s.merchandiser, `mutation($id: ID!) { cancelOrder(id: $id) { status } }`, map[string]any{"id": cancelled})
	expired := s.order(p, 4, "expired")
	for deadline := time.Now().Add(30 * time.Second); s.count(`SELECT count(*) FROM orders WHERE id = $1 AND status = 'CANCELLED'`, rawID(expired)) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the unpaid order did not expire within 30s")
		}
	}
	s.drained("rankings")
	// The product sold most in the seeded history, and the one ordered here.
	var top string
	if err := s.db.QueryRow(context.Background(), `SELECT l.product_id::text FROM order_lines l JOIN orders o ON o.id = l.order_id
		WHERE o.status <> 'CANCELLED' GROUP BY 1 ORDER BY sum(l.quantity) DESC, 1 LIMIT 1`).Scan(&top); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, id := range []string{rawID(p), top} {
			if got, want := rankedUnits(t, env, id), s.soldUnits(id); got != want {
				t.Errorf("%s: product %s ranked with %v units; want %v, its orders not cancelled", when, id, got, want)
			}
		}
	}
	check("as orders came")

	forgetRankings(t, env)
	for deadline := time.Now().Add(20 * time.Second); rankedUnits(t, env, top) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rankings were not rebuilt within 20s of Redis losing them")
		}
	}
	check("rebuilt")
}

// forgetRankings deletes every key of the rankings from the Redis of env, as a flush would.
func forgetRankings(t *testing.T, env testEnv) {
	t.Helper()
	rdb := redisOf(t, env)
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, env["REDIS_PREFIX"]+"rank:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("rank keys: %v, %v", keys, err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// redisOf is a client of the Redis of env.
func redisOf(t *testing.T, env testEnv) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	return redis.NewClient(opts)
}
