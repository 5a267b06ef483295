package resolvers

import (
	"context"
	"regexp"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

// maxOtherNames bounds the operation label beyond the known operations: names come from
// clients, and an unbounded label would let any client grow the metrics without end. The
// first names seen get their own label; the rest are counted as "other".
const maxOtherNames = 50

var operationName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Metrics counts GraphQL operations, their latency, their errors by code, and the open
// subscriptions.
type Metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	subscriptions *prometheus.GaugeVec

	known map[string]bool // the persisted operations' names, always labelled

	mu    sync.Mutex
	names map[string]bool // the other names with a label of their own
}

// NewMetrics registers the GraphQL metrics with reg. known are the names of the persisted
// (allowlisted) operations: each always has its own label.
func NewMetrics(reg prometheus.Registerer, known ...string) *Metrics {
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
		subscriptions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "storefront_graphql_subscriptions", Help: "Open subscriptions by field and transport (websocket or sse).",
		}, []string{"field", "transport"}),
		known: map[string]bool{},
		names: map[string]bool{},
	}
	for _, name := range known {
		m.known[name] = true
	}
	reg.MustRegister(m.requests, m.duration, m.errors, m.subscriptions)
	return m
}

// InterceptOperation counts a subscription as open from its start until its stream ends.
func (m *Metrics) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	responses := next(ctx)
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return responses
	}
	field := "other"
	if fields := graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Subscription"}); len(fields) > 0 {
		field = fields[0].Name // the schema bounds these
	}
	transport := "sse"
	if oc.Headers.Get("Upgrade") != "" {
		transport = "websocket"
	}
	open := m.subscriptions.WithLabelValues(field, transport)
	open.Inc()
	var once sync.Once
	closed := func() { once.Do(open.Dec) }
	stop := context.AfterFunc(ctx, closed)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if resp == nil {
			stop()
			closed()
		}
		return resp
	}
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

// label returns the operation name to record: "anonymous", the name of a known operation,
// another name while there is room for it, or "other".
func (m *Metrics) label(name string) string {
	if name == "" {
		return "anonymous"
	}
	if m.known[name] {
		return name
	}
	if !operationName.MatchString(name) {
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.names[name] {
		if len(m.names) >= maxOtherNames {
			return "other"
		}
		m.names[name] = true
	}
	return name
}

// OperationNames returns the names of the operations in a GraphQL document (none if it does
// not parse): the labels NewMetrics is given for persisted operations.
func OperationNames(doc string) []string {
	parsed, err := parser.ParseQuery(&ast.Source{Input: doc})
	if err != nil {
		return nil
	}
	var names []string
	for _, op := range parsed.Operations {
		if op.Name != "" {
			names = append(names, op.Name)
		}
	}
	return names
}
