//go:build fleet

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load runs request in a few goroutines, each calling it again and again with its worker
// number and call count, until stopped. request returns "" when the request went well, else
// what went wrong.
type load struct {
	requests, failures atomic.Int64
	stop               chan struct{}
	wg                 sync.WaitGroup
	mu                 sync.Mutex
	first              []string // the first few failures
}

func startLoad(workers int, request func(worker, i int) string) *load {
	l := &load{stop: make(chan struct{})}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				l.requests.Add(1)
				if what := request(w, i); what != "" {
					l.failures.Add(1)
					l.mu.Lock()
					if len(l.first) < 5 {
						l.first = append(l.first, what)
					}
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

// end stops the load and fails t if any request failed during what.
func (l *load) end(t *testing.T, during string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if n := l.failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed during %s; want none (first: %v)", n, l.requests.Load(), during, l.first)
	}
	t.Logf("%d requests during %s", l.requests.Load(), during)
}

// waitLonger is waitUntil for what takes longer on a loaded machine (a search index built,
// a node rejoining): it polls cond for up to within.
func waitLonger(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
	}
}

// request is one GraphQL request of a load: it reports every failure as a string, never
// through t, since it runs outside the test's goroutine. headers are added to the request.
func request(base, token, query string, vars map[string]any, headers map[string]string) (map[string]any, string) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var r struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Sprintf("%d %q", res.StatusCode, raw)
	}
	if len(r.Errors) > 0 {
		return r.Data, fmt.Sprint(r.Errors)
	}
	return r.Data, ""
}
