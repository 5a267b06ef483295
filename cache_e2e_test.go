package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/resolvers"
)

// withRedis points env at Redis url under a key prefix of the test's own.
func withRedis(t testing.TB, env testEnv, url string) testEnv {
	t.Helper()
	prefix := cachetest.NewPrefix()
	out := testEnv{"REDIS_URL": url, "REDIS_PREFIX": prefix}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// gql posts a query to a server and decodes the response.
func gql(t testing.TB, base, token, query string, vars map[string]any) (map[string]any, []map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	_, raw := post(t, base+"/graphql", token, string(body))
	var r struct {
		Data   map[string]any   `json:"data"`
		Errors []map[string]any `json:"errors"`
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatalf("response %q: %v", raw, err)
	}
	return r.Data, r.Errors
}

const priceQuery = `query($id: ID!) { product(id: $id) { price { amount } } }`

func price(t testing.TB, base, id string) string {
	t.Helper()
	data, errs := gql(t, base, "", priceQuery, map[string]any{"id": id})
	if len(errs) > 0 {
		t.Fatalf("price: %v", errs)
	}
	return data["product"].(map[string]any)["price"].(map[string]any)["amount"].(string)
}

func firstProductID(t testing.TB, base string) string {
	t.Helper()
	data, errs := gql(t, base, "", `{ products(first: 1) { edges { node { id } } } }`, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return data["products"].(map[string]any)["edges"].([]any)[0].(map[string]any)["node"].(map[string]any)["id"].(string)
}

// threeInstances starts three servers on one database and one Redis, and returns their base
// URLs, a merchandiser token and the id of a product.
func threeInstances(tb testing.TB) ([]string, string, string) {
	tb.Helper()
	env := withRedis(tb, newTestEnv(tb), cachetest.URL(tb))
	runCommand(tb, env, "seed", "--products", "30", "--seed", "3")
	token := strings.TrimSpace(runCommand(tb, env, "token", "--role", "merchandiser"))
	bases := make([]string, 3)
	for i := range bases {
		bases[i], _ = startServer(tb, env)
	}
	return bases, token, firstProductID(tb, bases[0])
}

func setPrice(tb testing.TB, base, token, id, amount string) {
	tb.Helper()
	_, errs := gql(tb, base, token, `mutation($id: ID!, $p: Decimal!) { updateProduct(id: $id, input: {price: $p}) { version } }`,
		map[string]any{"id": id, "p": amount})
	if len(errs) > 0 {
		tb.Fatal(errs)
	}
}

// A price change committed through one instance reaches the cached reads of all three.
func TestInvalidationReachesEveryInstance(t *testing.T) {
	bases, token, id := threeInstances(t)
	for round := range 3 {
		for _, b := range bases {
			price(t, b, id) // warm every tier of every instance
		}
		want := fmt.Sprintf("%d.00", 100+round)
		setPrice(t, bases[round], token, id, want)
		committed := time.Now()
		for i, b := range bases {
			for price(t, b, id) != want {
				if time.Since(committed) > 5*time.Second {
					t.Fatalf("round %d: instance %d still serves the old price 5s after the commit", round, i)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
}

// productBySlug returns the id of the product that slug finds on base, "" when NOT_FOUND.
func productBySlug(t testing.TB, base, slug string) string {
	t.Helper()
	data, errs := gql(t, base, "", `query($s: String!) { product(slug: $s) { id } }`, map[string]any{"s": slug})
	if len(errs) == 1 && errs[0]["extensions"].(map[string]any)["code"] == "NOT_FOUND" {
		return ""
	}
	if len(errs) > 0 {
		t.Fatalf("product by slug %q: %v", slug, errs)
	}
	return data["product"].(map[string]any)["id"].(string)
}

// Lookups by slug are cached like lookups by id and follow slug changes on every instance:
// the new slug finds the product, and the old one, which no event names, finds nothing.
func TestSlugLookupsFollowSlugChanges(t *testing.T) {
	bases, token, id := threeInstances(t)
	data, errs := gql(t, bases[0], "", `query($id: ID!) { product(id: $id) { slug } }`, map[string]any{"id": id})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	old := data["product"].(map[string]any)["slug"].(string)
	for round := range 2 {
		slug := fmt.Sprintf("renamed-%d", round)
		for _, b := range bases {
			// Warm every tier with both slugs: the old one found, the new one unknown.
			if got := productBySlug(t, b, old); got != id {
				t.Fatalf("round %d: slug %q finds %q; want %q", round, old, got, id)
			}
			if got := productBySlug(t, b, slug); got != "" {
				t.Fatalf("round %d: unused slug %q finds %q; want NOT_FOUND", round, slug, got)
			}
		}
		_, errs := gql(t, bases[round], token, `mutation($id: ID!, $s: String!) { updateProduct(id: $id, input: {slug: $s}) { slug } }`,
			map[string]any{"id": id, "s": slug})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		committed := time.Now()
		for i, b := range bases {
			for productBySlug(t, b, slug) != id || productBySlug(t, b, old) != "" {
				if time.Since(committed) > 5*time.Second {
					t.Fatalf("round %d: instance %d still finds the product by its old slug, or not by the new one, 5s after the commit", round, i)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		old = slug
	}
}

// Sessions live in Redis: a session started on one server is there after it restarts.
func TestSessionsSurviveRestart(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	base, stop := startServer(t, env)
	data, errs := gql(t, base, "", `mutation { startSession { token } }`, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	token := data["startSession"].(map[string]any)["token"].(string)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	base, _ = startServer(t, env)
	body, _ := json.Marshal(map[string]any{"query": `{ session { createdAt } }`})
	req := strings.NewReader(string(body))
	res := postWithHeaders(t, base+"/graphql", req, map[string]string{"X-Session-Id": token})
	if !strings.Contains(res, `"createdAt"`) || strings.Contains(res, `"session":null`) {
		t.Errorf("session after restart: got %s", res)
	}
}

// An over-budget client is refused with a retry-after; another client still gets through.
func TestRateLimitsChargeComplexity(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	env["RATE_LIMIT_PER_SECOND"] = "1"
	env["RATE_LIMIT_BURST"] = "300"
	runCommand(t, env, "seed", "--products", "30", "--seed", "3")
	base, _ := startServer(t, env)
	customer := strings.TrimSpace(runCommand(t, env, "token", "--role", "customer", "--customer", "c-1"))
	other := strings.TrimSpace(runCommand(t, env, "token", "--role", "customer", "--customer", "c-2"))

	expensive := `{ products(first: 20) { edges { node { id sku name } } } }` // about 20 x 5
	var refused map[string]any
	for range 10 {
		_, errs := gql(t, base, customer, expensive, nil)
		if len(errs) > 0 {
			refused = errs[0]
			break
		}
	}
	ext, _ := refused["extensions"].(map[string]any)
	if ext == nil || ext["code"] != "RATE_LIMITED" || ext["retryAfter"] == nil {
		t.Fatalf("a 300-unit budget spent on ~100-unit queries: got %v; want RATE_LIMITED with retryAfter", refused)
	}
	if _, errs := gql(t, base, other, `{ __typename }`, nil); len(errs) > 0 {
		t.Errorf("another client: got %v; want it through", errs)
	}
}

// Automatic persisted queries are shared by every instance through Redis.
func TestPersistedQueriesAcrossInstances(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	a, _ := startServer(t, env)
	b, _ := startServer(t, env)
	query := `{ __typename }`
	hash := fmt.Sprintf("%x", sha256.Sum256([]byte(query)))
	ext := fmt.Sprintf(`"extensions":{"persistedQuery":{"version":1,"sha256Hash":%q}}`, hash)
	if _, body := post(t, a+"/graphql", "", `{`+ext+`}`); !strings.Contains(body, "PersistedQueryNotFound") {
		t.Fatalf("unknown hash: got %s; want PersistedQueryNotFound", body)
	}
	if _, body := post(t, a+"/graphql", "", fmt.Sprintf(`{"query":%q,%s}`, query, ext)); !strings.Contains(body, `"Query"`) {
		t.Fatalf("register with the query: got %s", body)
	}
	if _, body := post(t, b+"/graphql", "", `{`+ext+`}`); !strings.Contains(body, `"Query"`) {
		t.Errorf("hash alone on another instance: got %s; want the stored query run", body)
	}
}

// Redis dying in the middle of a load costs latency, never an error; the cache comes back
// by itself when Redis does.
func TestRedisOutageIsInvisibleToClients(t *testing.T) {
	redisServer := cachetest.StartServer(t)
	env := withRedis(t, newTestEnv(t), redisServer.URL())
	runCommand(t, env, "seed", "--products", "30", "--seed", "3")
	base, _ := startServer(t, env)
	id := firstProductID(t, base)

	var requests, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				data, errs := gql(t, base, "", priceQuery, map[string]any{"id": id})
				requests.Add(1)
				if len(errs) > 0 || data["product"] == nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprint(errs))
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	redisServer.Stop()
	time.Sleep(1500 * time.Millisecond)
	redisServer.Start()
	// The breaker probes about once a second, and go-redis waits about a second after
	// repeated dial failures: allow a few seconds for the cache to come back.
	recovered := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_, m, _ := get(t, base+"/metrics")
		if strings.Contains(m, "storefront_redis_breaker_open 0") {
			recovered = true
			break
		}
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during the outage; want none (first: %v)", n, requests.Load(), firstFailure.Load())
	}
	if !recovered {
		t.Error("the Redis breaker did not close within 10s of Redis returning")
	}
	_, m, _ := get(t, base+"/metrics")
	if !strings.Contains(m, "storefront_redis_breaker_opens_total") || strings.Contains(m, "storefront_redis_breaker_opens_total 0") {
		t.Error("the breaker never opened while Redis was down")
	}
}

// BenchmarkInvalidationWindow measures how long each of three instances keeps serving the
// old price of a product after a change is committed through one of them: the stale-read
// window. Each instance is polled on its own; every update yields three samples.
func BenchmarkInvalidationWindow(b *testing.B) {
	bases, token, id := threeInstances(b)
	var windows []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for _, base := range bases {
			price(b, base, id) // every instance holds the old price in every tier
		}
		want := fmt.Sprintf("%d.%02d", 100+i/100, i%100)
		setPrice(b, bases[i%3], token, id, want)
		committed := time.Now()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, base := range bases {
			wg.Go(func() {
				for price(b, base, id) != want {
					if time.Since(committed) > 5*time.Second {
						b.Errorf("an instance served the old price for 5s")
						return
					}
				}
				mu.Lock()
				windows = append(windows, time.Since(committed))
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	slices.Sort(windows)
	pct := func(p float64) float64 {
		return float64(windows[int(p*float64(len(windows)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(windows[len(windows)-1].Microseconds())/1000, "max-ms")
}

// In allowlist mode only registered operations run; merchandisers may run any.
func TestAllowlistRunsRegisteredOperationsOnly(t *testing.T) {
	dir := t.TempDir()
	registered := `query Brands { brands { slug } }`
	if err := os.WriteFile(filepath.Join(dir, "brands.graphql"), []byte(registered), 0o644); err != nil {
		t.Fatal(err)
	}
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	env["PERSISTED_QUERIES"], env["OPERATIONS_DIR"] = "allowlist", dir
	base, _ := startServer(t, env)
	merchandiser := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))

	if _, errs := gql(t, base, "", registered, nil); len(errs) > 0 {
		t.Errorf("registered operation: got %v; want it run", errs)
	}
	hashOnly := fmt.Sprintf(`{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"%x"}}}`, sha256.Sum256([]byte(registered)))
	if _, body := post(t, base+"/graphql", "", hashOnly); !strings.Contains(body, `"brands"`) {
		t.Errorf("registered operation by hash: got %s; want it run", body)
	}
	_, errs := gql(t, base, "", `{ categories { slug } }`, nil)
	if len(errs) != 1 || errs[0]["extensions"].(map[string]any)["code"] != "FORBIDDEN" {
		t.Errorf("unregistered operation: got %v; want FORBIDDEN", errs)
	}
	if _, errs := gql(t, base, merchandiser, `{ categories { slug } }`, nil); len(errs) > 0 {
		t.Errorf("merchandiser's ad hoc operation: got %v; want it run", errs)
	}
}

// The attack of the issue on persisted queries: registrations, each with the right hash, of
// a megabyte of text that does not parse, of a document the schema refuses, and of one
// longer than a stored query may be. Redis gets none of them. A client's good registrations
// are charged to its rate limit, so that its budget, not Redis, ends them.
func TestPersistedQueriesCannotFillRedis(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	env["MAX_BODY_BYTES"] = "2097152"
	env["RATE_LIMIT_PER_SECOND"] = "1" // nothing flows back during the test
	env["RATE_LIMIT_BURST"] = "2000"
	env["TRUSTED_PROXIES"] = "127.0.0.1" // X-Forwarded-For names the client
	base, _ := startServer(t, env)
	rdb := redisClient(t, env["REDIS_URL"])
	stored := func() int {
		keys, err := rdb.Keys(context.Background(), env["REDIS_PREFIX"]+"apq:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	register := func(client, query string) string {
		body, _ := json.Marshal(map[string]any{"query": query, "extensions": map[string]any{
			"persistedQuery": map[string]any{"version": 1, "sha256Hash": fmt.Sprintf("%x", sha256.Sum256([]byte(query)))}}})
		return postWithHeaders(t, base+"/graphql", strings.NewReader(string(body)), map[string]string{"X-Forwarded-For": client})
	}

	// A megabyte is charged before it is parsed (32,768 units, as much as a burst): the
	// first registration fails to parse, the others are refused unread.
	garbage := strings.Repeat("x", 1<<20)
	for i := range 20 {
		resp := register("203.0.113.1", fmt.Sprintf("%d%s", i, garbage))
		if want := map[bool]string{true: "GRAPHQL_PARSE_FAILED", false: "RATE_LIMITED"}[i == 0]; !strings.Contains(resp, want) {
			t.Fatalf("garbage registration %d: got %.300s; want %s", i, resp, want)
		}
	}
	register("203.0.113.3", "{ secrets { password } }")
	long := "query Long { __typename } # " + strings.Repeat("x", 17<<10) // runs, too long to keep
	if resp := register("203.0.113.3", long); !strings.Contains(resp, `"__typename":"Query"`) {
		t.Fatalf("a long valid document: got %.300s; want it run", resp)
	}
	if n := stored(); n != 0 {
		t.Fatalf("after garbage, an invalid and an overlong document: %d queries stored; want 0", n)
	}

	// 2,000 units pay for fewer than 50 small registrations (each its 40-unit store charge
	// and its query): a client that keeps registering stops being stored, while its
	// operations still run as long as they fit its budget.
	for i := range 100 {
		register("203.0.113.2", fmt.Sprintf("query Q%d { __typename }", i))
	}
	if n := stored(); n < 40 || n > 2000/resolvers.StoreCostPerKiB {
		t.Fatalf("100 registrations on a 2,000-unit budget: %d stored; want what the budget pays for, 40 to 50", n)
	}
}

// redisClient connects to the Redis at url for the test's checks.
func redisClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// The Redis of make run, make test and make bench is capped, and evicts only keys with a
// TTL, as the README tells operators to configure theirs (scripts/redis.sh).
func TestRedisIsConfiguredAsACache(t *testing.T) {
	rdb := redisClient(t, cachetest.URL(t))
	cfg, err := rdb.ConfigGet(context.Background(), "maxmemory*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["maxmemory"] == "0" || cfg["maxmemory"] == "" || cfg["maxmemory-policy"] != "volatile-lru" {
		t.Fatalf("test Redis: maxmemory %q, policy %q; want a cap and volatile-lru", cfg["maxmemory"], cfg["maxmemory-policy"])
	}
}
