package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	ten := hundred[:10]
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", []time.Duration{7}, 50, 7},
		{"single max", []time.Duration{7}, 100, 7},
		{"100 p50", hundred, 50, 50 * time.Millisecond},
		{"100 p95", hundred, 95, 95 * time.Millisecond},
		{"100 p99", hundred, 99, 99 * time.Millisecond},
		{"100 max", hundred, 100, 100 * time.Millisecond},
		// Nearest rank rounds up: 95% of 10 samples is 9.5, so the 10th sample.
		{"10 p95", ten, 95, 10 * time.Millisecond},
		{"10 p50", ten, 50, 5 * time.Millisecond},
		{"10 p1", ten, 1, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: percentile(p%v) = %v; want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

// respond serves a fixed status and body.
func respond(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func testConfig(t *testing.T, url string, args ...string) config {
	t.Helper()
	cfg, err := parseFlags(append([]string{"-url", url, "-query", "{ __typename }"}, args...), io.Discard)
	if err != nil {
		t.Fatalf("parseFlags: got error %v; want nil", err)
	}
	return cfg
}

func TestErrorDetection(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string // "" means success
	}{
		{"data", respond(200, `{"data":{"__typename":"Query"}}`), ""},
		{"errors key nested in data is fine", respond(200, `{"data":{"errors":["x"]}}`), ""},
		{"top-level errors", respond(200, `{"errors":[{"message":"boom"}],"data":null}`), "boom"},
		{"errors with partial data", respond(200, `{"data":{"a":1},"errors":[{"message":"partial"}]}`), "partial"},
		{"status 500", respond(500, `{"data":{}}`), "status 500"},
		{"status 422", respond(422, `{"errors":[{"message":"parse"}]}`), "status 422"},
		{"not JSON", respond(200, `<html>oops</html>`), "not a JSON object"},
		{"JSON array", respond(200, `[]`), "not a JSON object"},
		{"long body truncated", respond(500, strings.Repeat("x", 10*maxErrBody)), "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			w := &worker{client: newClient(1), cfg: new(testConfig(t, srv.URL))}
			err := w.do()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("do() = %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("do() = %v; want an error containing %q", err, tt.wantErr)
			case err != nil && len(err.Error()) > 2*maxErrBody:
				t.Fatalf("error message is %d bytes; want at most %d", len(err.Error()), 2*maxErrBody)
			}
		})
	}
}

func TestTransportFailureIsAnError(t *testing.T) {
	srv := httptest.NewServer(respond(200, `{"data":{}}`))
	url := srv.URL
	srv.Close()
	w := &worker{client: newClient(1), cfg: new(testConfig(t, url))}
	if err := w.do(); err == nil {
		t.Fatalf("do() against a closed server = nil; want a transport error")
	}
}

// TestRun checks a whole run against a real server: what it sends, that it reuses
// connections, and that every measured request has a latency.
func TestRun(t *testing.T) {
	var served, conns atomic.Int64
	var badRequest atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if problem := checkRequest(r); problem != "" {
			badRequest.Store(problem)
		}
		respond(200, `{"data":{"product":{"id":"1"}}}`)(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	cfg := testConfig(t, srv.URL, "-c", "4", "-d", "300ms", "-warmup", "100ms",
		"-variables", `{"id":"1"}`, "-header", "Authorization: Bearer t0ken")
	res := run(cfg)

	if p, ok := badRequest.Load().(string); ok {
		t.Fatalf("server saw a bad request: %s", p)
	}
	if err := res.failure(); err != nil {
		t.Fatalf("failure() = %v; want nil", err)
	}
	if got := len(res.lat); got != res.requests {
		t.Errorf("latencies = %d; want one per request (%d)", got, res.requests)
	}
	if !slices.IsSorted(res.lat) {
		t.Errorf("latencies are not sorted")
	}
	// The warm-up requests reach the server but are not counted.
	if got, total := int64(res.requests), served.Load(); got >= total {
		t.Errorf("measured requests = %d; want fewer than the %d served, warm-up excluded", got, total)
	}
	// One connection per worker, kept alive. The transport may dial a spare while a
	// connection is on its way back to the pool, so allow a few; without keep-alive
	// there would be hundreds.
	if got := conns.Load(); got > 8 {
		t.Errorf("server accepted %d connections; want at most 8 for 4 kept-alive workers", got)
	}
	if res.elapsed < 300*time.Millisecond {
		t.Errorf("elapsed = %v; want at least the 300ms window", res.elapsed)
	}
}

// checkRequest describes what is wrong with a load request, or returns "".
func checkRequest(r *http.Request) string {
	var body struct {
		Query     string
		Variables map[string]string
	}
	switch err := json.NewDecoder(r.Body).Decode(&body); {
	case r.Method != http.MethodPost:
		return "method " + r.Method
	case r.Header.Get("Content-Type") != "application/json":
		return "content type " + r.Header.Get("Content-Type")
	case r.Header.Get("Authorization") != "Bearer t0ken":
		return "authorization " + r.Header.Get("Authorization")
	case err != nil:
		return "body: " + err.Error()
	case body.Query != "{ __typename }" || body.Variables["id"] != "1":
		return "body query/variables: " + body.Query
	}
	return ""
}

func TestRunReportsFailures(t *testing.T) {
	srv := httptest.NewServer(respond(200, `{"errors":[{"message":"not found"}]}`))
	defer srv.Close()
	res := run(testConfig(t, srv.URL, "-c", "2", "-d", "100ms", "-warmup", "0s"))
	if res.requests == 0 || res.errors != res.requests {
		t.Fatalf("errors = %d of %d requests; want all of at least one", res.errors, res.requests)
	}
	if err := res.failure(); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("failure() = %v; want an error quoting the body", err)
	}
}

func TestParseFlagsRejects(t *testing.T) {
	tests := map[string][]string{
		"no query":          {"-url", "http://127.0.0.1:1/graphql"},
		"variables array":   {"-query", "{ a }", "-variables", "[1]"},
		"variables invalid": {"-query", "{ a }", "-variables", "{"},
		"header no colon":   {"-query", "{ a }", "-header", "Authorization"},
		"zero workers":      {"-query", "{ a }", "-c", "0"},
		"zero duration":     {"-query", "{ a }", "-d", "0s"},
		"extra argument":    {"-query", "{ a }", "stray"},
	}
	for name, args := range tests {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%s: parseFlags(%q) = nil error; want an error", name, args)
		}
	}
}

func TestRequestBody(t *testing.T) {
	tests := []struct{ query, vars, want string }{
		{"{ a }", "", `{"query":"{ a }"}`},
		{"query($id: ID!) { p(id: $id) }", ` {"id": "x"} `, `{"query":"query($id: ID!) { p(id: $id) }","variables":{"id":"x"}}`},
	}
	for _, tt := range tests {
		got, err := requestBody(tt.query, tt.vars)
		if err != nil || string(got) != tt.want {
			t.Errorf("requestBody(%q, %q) = %s, %v; want %s, nil", tt.query, tt.vars, got, err, tt.want)
		}
	}
}

// TestMixIsOpenLoop runs the mix against a server slower than the schedule's interval: the
// operations still start on schedule (as many as the rate says, not as many as the server's
// speed allows), each class gets its share, and latencies count the server's delay.
func TestMixIsOpenLoop(t *testing.T) {
	const delay = 50 * time.Millisecond
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		time.Sleep(delay)
		respond(200, `{"data":{"createCart":{"token":"t"}}}`)(w, r)
	}))
	defer srv.Close()
	m := &mixer{client: newClient(maxInFlight), url: srv.URL, header: withDefaults(http.Header{}),
		slugs: []string{"s"}, products: []string{"p"}, categories: []string{"c"}, carts: make(chan *cart, 16)}
	const rate, window = 400.0, 500 * time.Millisecond
	results := m.step(storefrontMix(), rate, 0, window)
	total := 0
	for _, r := range results {
		total += len(r.lat)
		if r.errors > 0 {
			t.Errorf("%s: %d errors, first %v; want none", r.class.name, r.errors, r.firstErr)
		}
		if len(r.lat) > 0 && r.lat[0] < delay {
			t.Errorf("%s: fastest %v; want at least the server's %v", r.class.name, r.lat[0], delay)
		}
	}
	// A closed loop of one worker would manage window/delay = 10 operations.
	if want := int(rate * window.Seconds()); total != want {
		t.Errorf("operations: %d; want the %d the schedule starts", total, want)
	}
	if page := results[0]; len(page.lat) < total/4 || len(page.lat) > total*3/5 {
		t.Errorf("product pages: %d of %d operations; want about 40%%", len(page.lat), total)
	}
}

func TestParseRates(t *testing.T) {
	if got, err := parseRates("100, 200,2800"); err != nil || !slices.Equal(got, []float64{100, 200, 2800}) {
		t.Errorf("parseRates: %v, %v; want [100 200 2800]", got, err)
	}
	for _, bad := range []string{"", "0", "-5", "10,x"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("parseRates(%q): no error; want one", bad)
		}
	}
}

// A client following Retry-After waits out RATE_LIMITED answers, whether the server says
// so with a 429 and Retry-After or in the body's extensions, and counts them apart.
func TestFollowRetryAfter(t *testing.T) {
	for name, refuse := range map[string]http.HandlerFunc{
		"429": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			respond(429, `{"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED","retryAfter":1}}]}`)(w, r)
		},
		"body": respond(200, `{"errors":[{"message":"slow down","extensions":{"code":"RATE_LIMITED","retryAfter":0.3}}]}`),
	} {
		t.Run(name, func(t *testing.T) {
			var served atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if served.Add(1) == 1 {
					refuse(w, r)
					return
				}
				respond(200, `{"data":{}}`)(w, r)
			}))
			defer srv.Close()
			res := run(testConfig(t, srv.URL, "-c", "1", "-d", "1200ms", "-warmup", "0s", "-follow-retry-after"))
			if err := res.failure(); err != nil || res.limited != 1 {
				t.Fatalf("failure() = %v, limited %d; want nil and 1", err, res.limited)
			}
			if res.requests == 0 || res.errors != 0 {
				t.Fatalf("%d requests, %d errors; want some requests after waiting out the refusal, no errors", res.requests, res.errors)
			}
			// Without the flag, the refusal is a failure.
			served.Store(0)
			if err := run(testConfig(t, srv.URL, "-c", "1", "-d", "100ms", "-warmup", "0s")).failure(); err == nil {
				t.Fatal("failure() = nil without -follow-retry-after; want the refusal")
			}
		})
	}
}

// -expect-errors measures clients whose requests are meant to be refused.
func TestExpectErrors(t *testing.T) {
	srv := httptest.NewServer(respond(400, `{"errors":[{"message":"bad"}]}`))
	defer srv.Close()
	res := run(testConfig(t, srv.URL, "-c", "1", "-d", "100ms", "-warmup", "0s", "-expect-errors"))
	if err := res.failure(); err != nil || res.requests == 0 {
		t.Fatalf("failure() = %v with %d requests; want nil and some", err, res.requests)
	}
}

// -pace spaces one worker's requests: a second at 100 ms makes at most 10 or 11 of them.
func TestPace(t *testing.T) {
	srv := httptest.NewServer(respond(200, `{"data":{}}`))
	defer srv.Close()
	res := run(testConfig(t, srv.URL, "-c", "1", "-d", "1s", "-warmup", "0s", "-pace", "100ms"))
	if err := res.failure(); err != nil || res.requests == 0 || res.requests > 11 {
		t.Fatalf("failure() = %v with %d requests; want nil and 1 to 11", err, res.requests)
	}
}

// -query-file and -variables-file send what the files hold, for documents and variables too
// long for a command line.
func TestQueryAndVariablesFromFiles(t *testing.T) {
	dir := t.TempDir()
	query, vars := filepath.Join(dir, "q.graphql"), filepath.Join(dir, "v.json")
	if err := errors.Join(os.WriteFile(query, []byte("query($n: Int) { n(n: $n) }"), 0o600),
		os.WriteFile(vars, []byte(`{"n": 7}`), 0o600)); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "http://127.0.0.1:1", "-query-file", query, "-variables-file", vars)
	if want := `{"query":"query($n: Int) { n(n: $n) }","variables":{"n":7}}`; string(cfg.body) != want {
		t.Errorf("body: got %s; want %s", cfg.body, want)
	}
}

func TestHighestHeldRefinesTheLastStep(t *testing.T) {
	cases := []struct {
		limit        float64 // the highest rate that holds
		refine       int
		held, missed float64
		tried        string
	}{
		{1000, 2, 1000, 1100, "200 400 800 1200 1000 1100"},
		{900, 2, 900, 1000, "200 400 800 1200 1000 900"},
		{900, 0, 800, 1200, "200 400 800 1200"},
		{5000, 2, 1200, 0, "200 400 800 1200"},
		{100, 2, 100, 150, "200 100 150"},
	}
	for _, c := range cases {
		var tried []string
		held, missed := highestHeld([]float64{200, 400, 800, 1200}, c.refine, func(rate float64) bool {
			tried = append(tried, fmt.Sprint(rate))
			return rate <= c.limit
		})
		if held != c.held || missed != c.missed || strings.Join(tried, " ") != c.tried {
			t.Errorf("limit %.0f, refine %d: got held %.0f, missed %.0f after %v; want %.0f, %.0f after %s",
				c.limit, c.refine, held, missed, tried, c.held, c.missed, c.tried)
		}
	}
}
