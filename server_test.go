package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/homegoods/storefront/db/dbtest"
)

// testEnv is the environment of the server under test.
type testEnv map[string]string

func (e testEnv) get(k string) string { return e[k] }

func newTestEnv(t testing.TB) testEnv {
	return testEnv{
		"DATABASE_URL":   dbtest.NewURL(t),
		"HTTP_ADDR":      "127.0.0.1:0",
		"JWT_SECRET":     "e2e-secret",
		"LOG_FORMAT":     "json",
		"MAX_BODY_BYTES": "4096",
	}
}

// startServer runs the real main's serve command on a free port and returns its base URL,
// and a function that stops it and returns what run returned.
func startServer(t testing.TB, env testEnv) (string, func() error) {
	t.Helper()
	base, stop, _ := startServerWithLog(t, env)
	return base, stop
}

// startServerWithLog is startServer that also returns the server's log so far (LOG_FORMAT
// json: one JSON object a line; any other line is a test failure, since log shippers read
// JSON only).
func startServerWithLog(t testing.TB, env testEnv) (string, func() error, func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logR, logW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve"}, env.get, io.Discard, logW)
		logW.Close()
	}()
	addr := make(chan string, 1)
	var mu sync.Mutex
	var lines strings.Builder
	scanned := make(chan struct{}) // the log is read to its end: t.Log is safe until then
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(logR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			mu.Lock()
			lines.WriteString(sc.Text() + "\n")
			mu.Unlock()
			var line struct{ Msg, Addr, Level string }
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				t.Errorf("a log line that is not JSON: %q", sc.Text())
				continue
			}
			switch {
			case line.Msg == "listening":
				addr <- line.Addr
			case line.Level == "ERROR":
				// A failing test then shows why the server answered INTERNAL.
				t.Log(sc.Text())
			}
		}
	}()
	log := func() string {
		mu.Lock()
		defer mu.Unlock()
		return lines.String()
	}
	stop := sync.OnceValue(func() error {
		cancel()
		err := <-done
		<-scanned
		return err
	})
	t.Cleanup(func() { _ = stop() })
	select {
	case a := <-addr:
		return "http://" + a, stop, log
	case err := <-done:
		done <- err // for stop, at cleanup
		t.Fatalf("server exited before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start listening within 30s")
	}
	return "", stop, log
}

func runCommand(t testing.TB, env testEnv, args ...string) string {
	t.Helper()
	var out strings.Builder
	if err := run(context.Background(), args, env.get, &out, io.Discard); err != nil {
		t.Fatalf("storefront %v: %v", args, err)
	}
	return out.String()
}

func get(t testing.TB, url string) (int, string, http.Header) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// postWithHeaders posts a GraphQL body with extra headers and returns the response body.
func postWithHeaders(t testing.TB, url string, body io.Reader, headers map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, body)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func post(t testing.TB, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestServerEndToEnd(t *testing.T) {
	env := newTestEnv(t)
	runCommand(t, env, "migrate")
	runCommand(t, env, "seed", "--products", "40", "--seed", "2")
	token := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))
	base, stop := startServer(t, env)

	if code, body, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: got %d %q", code, body)
	}
	if code, body, _ := get(t, base+"/readyz"); code != 200 || body != "ready\nanalytics: timescaledb\n" {
		t.Errorf("/readyz: got %d %q", code, body)
	}
	if code, body, _ := get(t, base+"/"); code != 200 || !strings.Contains(strings.ToLower(body), "graphiql") {
		t.Errorf("playground: got %d and no GraphiQL page", code)
	}

	code, body := post(t, base+"/graphql", token, `{"query":"query Stock { products(first: 2) { totalCount edges { node { sku inventory { warehouse { code } available } } } } }"}`)
	if code != 200 || strings.Contains(body, `"errors"`) || !strings.Contains(body, `"warehouse":{"code"`) {
		t.Errorf("merchandiser query: got %d %s", code, body)
	}
	if code, body, hdr := get(t, base+"/graphql?query=%7B__typename%7D"); code != 200 || !strings.Contains(body, `"Query"`) || hdr.Get("X-Request-Id") == "" {
		t.Errorf("GET query: got %d %s, request id %q", code, body, hdr.Get("X-Request-Id"))
	}
	if _, body, _ := get(t, base+`/graphql?query=mutation%7BcreateBrand(input:%7Bname:"X"%7D)%7Bid%7D%7D`); !strings.Contains(body, `"errors"`) {
		t.Errorf("GET mutation: got %s; want it refused", body)
	}
	big := fmt.Sprintf(`{"query":"{ __typename }","variables":{"pad":%q}}`, strings.Repeat("x", 5000))
	if code, body := post(t, base+"/graphql", "", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: got %d %s; want 413", code, body)
	}

	_, metrics, _ := get(t, base+"/metrics")
	for _, want := range []string{`storefront_graphql_requests_total{operation="Stock",type="query"} 1`, "storefront_db_pool_max_conns", "go_goroutines"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// SIGTERM (here: the context ending) lets a request that has started finish.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	env := newTestEnv(t)
	base, stop := startServer(t, env)

	bodyR, bodyW := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bodyR)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(`{"query":"{ __typename }"}`))
	result := make(chan string, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- "error: " + err.Error()
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		result <- fmt.Sprintf("%d %s", res.StatusCode, b)
	}()
	// The server has the headers and waits for the rest of the body when shutdown begins.
	fmt.Fprint(bodyW, `{"query":`)
	time.Sleep(200 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("server stopped with a request in flight: %v", err)
	default:
	}
	fmt.Fprint(bodyW, `"{ __typename }"}`)
	bodyW.Close()

	if got := <-result; !strings.HasPrefix(got, "200 ") || !strings.Contains(got, `"Query"`) {
		t.Errorf("in-flight request: got %s; want 200 with data", got)
	}
	if err := <-stopped; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestMalformedRedisURLIsAnError(t *testing.T) {
	env := newTestEnv(t)
	env["REDIS_URL"] = "redis//no-scheme"
	err := run(context.Background(), []string{"serve"}, env.get, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
		t.Errorf("got %v; want an error naming REDIS_URL, not a silent fall back to memory", err)
	}
}

func TestConfigRefusesMalformedValues(t *testing.T) {
	env := testEnv{"DB_MAX_CONNS": "many", "PLAYGROUND": "maybe"}
	_, err := loadConfig(env.get)
	if err == nil || !strings.Contains(err.Error(), "DB_MAX_CONNS") || !strings.Contains(err.Error(), "PLAYGROUND") {
		t.Errorf("got %v; want both malformed variables named", err)
	}
	for _, u := range []string{"postgres://app:s3cret@db:5432/shop", "redis://:s3cret@cache:6379/0", "host=db password=s3cret dbname=shop"} {
		if got := maskURL(u); strings.Contains(got, "s3cret") {
			t.Errorf("maskURL(%q): got %s; want the password hidden", u, got)
		}
	}
}

// The authorities of REDIS_CA_CERT and ELASTICSEARCH_CA_CERT are checked before anything
// connects: a file that is no certificate, or an authority for a Redis not reached over TLS,
// is a configuration error naming the variable.
func TestTLSAuthoritiesAreChecked(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  testEnv
		want string
	}{
		{testEnv{"REDIS_URL": "redis://cache:6379/0", "REDIS_CA_CERT": notPEM}, "REDIS_CA_CERT is set but Redis is not reached over TLS"},
		{testEnv{"REDIS_URL": "rediss://cache:6379/0", "REDIS_CA_CERT": notPEM}, "REDIS_CA_CERT: " + notPEM + " holds no PEM certificate"},
		{testEnv{"REDIS_ADDRS": "a:1,b:2", "REDIS_TLS": "true", "REDIS_CA_CERT": "/nonexistent.pem"}, "REDIS_CA_CERT: open /nonexistent.pem"},
	} {
		cfg, err := loadConfig(c.env.get)
		if err == nil {
			_, err = cfg.redisOptions()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v; want %q", c.env, err, c.want)
		}
	}
	cfg, err := loadConfig(testEnv{"ELASTICSEARCH_CA_CERT": notPEM}.get)
	if err == nil {
		_, err = cfg.searchTransport()
	}
	if err == nil || !strings.Contains(err.Error(), "ELASTICSEARCH_CA_CERT: "+notPEM+" holds no PEM certificate") {
		t.Errorf("a search authority that is no certificate: got %v", err)
	}
}

func TestReadURLsSplit(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                       nil,
		"postgres://r1/shop":                     {"postgres://r1/shop"},
		"postgres://r1/shop, postgres://r2/shop": {"postgres://r1/shop", "postgres://r2/shop"},
		"postgres://r1/shop postgres://r2/shop":  {"postgres://r1/shop", "postgres://r2/shop"},
		// A multi-host URL is one URL.
		"postgres://r1:5432,r2:5432/shop?target_session_attrs=standby": {"postgres://r1:5432,r2:5432/shop?target_session_attrs=standby"},
	} {
		if got := splitURLs(in); !slices.Equal(got, want) {
			t.Errorf("splitURLs(%q): got %q; want %q", in, got, want)
		}
	}
}
