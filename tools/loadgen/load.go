package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

const (
	// A hung server must not hang the benchmark: no single request may take longer.
	requestTimeout = 30 * time.Second
	// Sizing hint for the per-worker latency slices, so that the hot path rarely grows
	// them: a guess at the fastest total rate loopback reaches. Faster runs still work.
	expectedRate = 50_000
	// How much of a failing response body the report quotes.
	maxErrBody = 512
)

// worker sends requests one after another. Each worker owns its latencies and error
// count, so the hot path takes no locks; run merges them when all have stopped.
type worker struct {
	client  *http.Client
	cfg     *config
	buf     bytes.Buffer // reused response buffer
	lat     []time.Duration
	errors  int
	limited int   // refusals followed (-follow-retry-after)
	first   error // the first measured failure
	firstAt time.Time
}

// result is the merged outcome of the measured window.
type result struct {
	requests int
	errors   int
	// limited counts the RATE_LIMITED answers a client following Retry-After waited on:
	// neither requests nor errors.
	limited  int
	elapsed  time.Duration
	lat      []time.Duration // sorted ascending
	firstErr error
}

// run warms up, measures and merges. Requests that started during the warm-up are not
// recorded; the window ends when the last request started before the deadline returns.
func run(cfg config) result {
	client := newClient(cfg.workers)
	measureFrom := time.Now().Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	perWorker := max(1024, int(cfg.duration.Seconds()*expectedRate)/cfg.workers)

	workers := make([]*worker, cfg.workers)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{client: client, cfg: &cfg, lat: make([]time.Duration, 0, perWorker)}
		workers[i] = w
		wg.Go(func() { w.loop(measureFrom, end) })
	}
	wg.Wait()
	elapsed := time.Since(measureFrom) // before merging: sorting is not part of the window
	client.CloseIdleConnections()
	res := merge(workers)
	res.elapsed = elapsed
	return res
}

// newClient shares one keep-alive pool among all workers, large enough that no worker
// ever has to open a fresh connection after the warm-up.
func newClient(workers int) *http.Client {
	transport := &http.Transport{
		// No Proxy: the load must stay on loopback even if HTTP_PROXY is set.
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        workers,
		MaxIdleConnsPerHost: workers,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: transport, Timeout: requestTimeout}
}

func (w *worker) loop(measureFrom, end time.Time) {
	var next time.Time // when a paced worker may start its next request
	for {
		if w.cfg.pace > 0 {
			time.Sleep(time.Until(next))
			next = time.Now().Add(w.cfg.pace)
		}
		start := time.Now()
		if !start.Before(end) {
			return
		}
		err := w.do()
		var limited *rateLimited
		if w.cfg.followRetryAfter && errors.As(err, &limited) {
			if !start.Before(measureFrom) {
				w.limited++
			}
			time.Sleep(min(limited.wait, time.Until(end)))
			continue
		}
		if start.Before(measureFrom) {
			continue
		}
		w.lat = append(w.lat, time.Since(start))
		if err != nil && !w.cfg.expectErrors {
			w.fail(err, start)
		}
	}
}

func (w *worker) fail(err error, at time.Time) {
	if w.errors == 0 {
		w.first, w.firstAt = err, at
	}
	w.errors++
}

// do sends one request and reads the whole body, as a real client would, so that the
// connection is reused and the server's full response cost is measured.
func (w *worker) do() error {
	req, err := http.NewRequest(http.MethodPost, w.cfg.url, bytes.NewReader(w.cfg.body))
	if err != nil {
		return err
	}
	// Shared read-only: neither Client nor Transport write to request headers here.
	req.Header = w.cfg.header
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	w.buf.Reset()
	_, err = w.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return checkResponse(resp.StatusCode, resp.Header, w.buf.Bytes())
}

// rateLimited is the failure of a request the server refused with RATE_LIMITED; wait is
// its Retry-After.
type rateLimited struct{ wait time.Duration }

func (e *rateLimited) Error() string { return fmt.Sprintf("rate limited: retry after %v", e.wait) }

// checkResponse fails a response that is not a 200 or whose body carries a top-level
// "errors" key, as a *rateLimited when the server refused it with RATE_LIMITED. Only the
// top level is decoded: nested values stay raw, which keeps the check cheap next to the
// request itself.
func checkResponse(status int, header http.Header, body []byte) error {
	if seconds, err := strconv.Atoi(header.Get("Retry-After")); err == nil {
		return &rateLimited{wait: time.Duration(seconds) * time.Second}
	}
	if status != http.StatusOK {
		return fmt.Errorf("status %d: %s", status, truncate(body))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return fmt.Errorf("body is not a JSON object (%v): %s", err, truncate(body))
	}
	if errs, ok := top["errors"]; ok {
		return graphqlErrors(errs, body)
	}
	return nil
}

// graphqlErrors is the failure of a response with errors: a *rateLimited when the first
// one is RATE_LIMITED (its extensions.retryAfter in seconds).
func graphqlErrors(raw json.RawMessage, body []byte) error {
	var errs []struct {
		Extensions struct {
			Code       string  `json:"code"`
			RetryAfter float64 `json:"retryAfter"`
		} `json:"extensions"`
	}
	if json.Unmarshal(raw, &errs) == nil && len(errs) > 0 && errs[0].Extensions.Code == "RATE_LIMITED" {
		return &rateLimited{wait: time.Duration(errs[0].Extensions.RetryAfter * float64(time.Second))}
	}
	return fmt.Errorf("graphql errors: %s", truncate(body))
}

func truncate(body []byte) string {
	if len(body) <= maxErrBody {
		return string(body)
	}
	return string(body[:maxErrBody]) + "…"
}

// merge gathers every worker's latencies into one sorted slice and keeps the earliest
// failure, which is usually the most telling one.
func merge(workers []*worker) result {
	var res result
	var firstAt time.Time
	for _, w := range workers {
		res.requests += len(w.lat)
		res.errors += w.errors
		res.limited += w.limited
		if w.first != nil && (res.firstErr == nil || w.firstAt.Before(firstAt)) {
			res.firstErr, firstAt = w.first, w.firstAt
		}
	}
	res.lat = make([]time.Duration, 0, res.requests)
	for _, w := range workers {
		res.lat = append(res.lat, w.lat...)
	}
	slices.Sort(res.lat)
	return res
}

// percentile returns the nearest-rank percentile p (0 < p <= 100) of sorted latencies:
// the smallest value that at least p% of the samples do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted)) * p / 100))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// failure says why the run must not be trusted, or nil.
func (r result) failure() error {
	switch {
	case r.requests == 0:
		return errors.New("no request completed in the measured window")
	case r.errors > 0:
		return fmt.Errorf("%d of %d requests failed; first: %w", r.errors, r.requests, r.firstErr)
	}
	return nil
}
