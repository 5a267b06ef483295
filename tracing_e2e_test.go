package main

import (
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/homegoods/storefront/cache/cachetest"
)

// otlpReceiver is an OTLP/HTTP trace collector in the test process: it keeps every span
// the server exports.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	rcv := &otlpReceiver{}
	rcv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, _ := io.ReadAll(body)
		var req collectorpb.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(raw, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rcv.spans = append(rcv.spans, ss.Spans...)
			}
		}
		rcv.mu.Unlock()
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rcv.Close)
	return rcv
}

// trace returns the names of the spans of trace id (hex), and the parent of each.
func (rcv *otlpReceiver) trace(id string) map[string]string {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	out := map[string]string{}
	for _, s := range rcv.spans {
		if fmt.Sprintf("%x", s.TraceId) == id {
			out[s.Name] = fmt.Sprintf("%x", s.ParentSpanId)
		}
	}
	return out
}

// A request with a W3C traceparent continues its caller's trace through the server: the
// HTTP request, the GraphQL operation, dataloader batches, PostgreSQL queries, Redis
// commands and the call to the search engine, which gets the traceparent passed on. The
// request's log lines carry the trace id.
func TestTracingFollowsARequest(t *testing.T) {
	rcv := newOTLPReceiver(t)
	esURL := elasticURL(t)
	index := fmt.Sprintf("trace_%d", rand.Uint32())
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, esURL+"/"+index+"*", nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	})
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	env["ELASTICSEARCH_URL"], env["SEARCH_INDEX"] = esURL, index
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = rcv.URL
	env["LOG_LEVEL"] = "debug"
	runCommand(t, env, "seed", "--products", "10", "--seed", "7")
	base, stop, log := startServerWithLog(t, env)

	const traceID, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	body := `{"query":"query Traced { products(first: 3) { edges { node { name brand { name } } } } search(query: \"oak\", first: 2) { totalCount } }"}`
	out := postWithHeaders(t, base+"/graphql", strings.NewReader(body), map[string]string{"traceparent": "00-" + traceID + "-" + parent + "-01"})
	if strings.Contains(out, `"errors"`) {
		t.Fatalf("query: %s", out)
	}
	if err := stop(); err != nil { // flushes the spans
		t.Fatal(err)
	}
	spans := rcv.trace(traceID)
	if spans["POST /graphql"] != parent {
		t.Errorf("server span: got spans %v; want POST /graphql, child of the caller's span %s", spans, parent)
	}
	want := []string{"graphql query", "dataloader brand"}
	for _, name := range want {
		if _, ok := spans[name]; !ok {
			t.Errorf("no %q span in trace %s: %v", name, traceID, spans)
		}
	}
	var sql, redisCmd, searchCall bool
	for name := range spans {
		sql = sql || strings.Contains(name, "SELECT")
		redisCmd = redisCmd || strings.HasPrefix(name, "mget") || strings.HasPrefix(name, "get") || strings.HasPrefix(name, "pipeline")
		searchCall = searchCall || strings.HasPrefix(name, "HTTP POST") || strings.HasPrefix(name, "POST")
	}
	if !sql || !redisCmd || !searchCall {
		t.Errorf("trace %s: PostgreSQL %v, Redis %v, search engine %v; want all three: %v", traceID, sql, redisCmd, searchCall, spans)
	}
	if !strings.Contains(log(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("no log line carries trace id %s", traceID)
	}
}
