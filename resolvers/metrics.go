package resolvers

import (
	"context"
	"regexp"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
)

// maxOperationNames bounds the operation label: names come from clients, and an unbounded
// label would let any client grow the metrics without end.
const maxOperationNames = 200

var operationName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Metrics counts GraphQL operations, their latency and their errors by code.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec

	mu    sync.Mutex
	names map[string]bool
}

// NewMetrics registers the GraphQL metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storefront_graphql_requests_total", Help: "GraphQL operations by name and type.",
		}, []string{"operation", "type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "storefront_graphql_request_duration_seconds", Help: "GraphQL operation latency by name.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "storefront_graphql_errors_total", Help: "GraphQL errors by extensions.code.",
		}, []string{"code"}),
		names: map[string]bool{},
	}
	reg.MustRegister(m.requests, m.duration, m.errors)
	return m
}

// ExtensionName names the gqlgen extension.
func (m *Metrics) ExtensionName() string { return "Metrics" }

// Validate accepts every schema.
func (m *Metrics) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse times each response and counts its errors.
func (m *Metrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	start := time.Now()
	resp := next(ctx)
	name, kind := "unknown", "unknown"
	if graphql.HasOperationContext(ctx) {
		oc := graphql.GetOperationContext(ctx)
		name = oc.OperationName
		if oc.Operation != nil {
			name, kind = oc.Operation.Name, string(oc.Operation.Operation)
		}
		name = m.label(name)
	}
	// A subscription's responses are its events: the time between them is no latency.
	if kind != "subscription" {
		m.requests.WithLabelValues(name, kind).Inc()
		m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	}
	if resp != nil {
		for _, e := range resp.Errors {
			code, _ := e.Extensions["code"].(string)
			if code == "" {
				code = "INTERNAL"
			}
			m.errors.WithLabelValues(code).Inc()
		}
	}
	return resp
}

// label returns the operation name to record: "anonymous", the name itself, or "other" once
// the set of names is full.
func (m *Metrics) label(name string) string {
	if name == "" {
		return "anonymous"
	}
	if !operationName.MatchString(name) {
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.names[name] {
		if len(m.names) >= maxOperationNames {
			return "other"
		}
		m.names[name] = true
	}
	return name
}
