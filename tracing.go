package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is the server's tracing: OpenTelemetry spans exported over OTLP/HTTP when
// OTEL_EXPORTER_OTLP_ENDPOINT is set. Off, every method returns nil or its input unchanged,
// so that nothing is wrapped and tracing costs nothing. Spans: the HTTP request (with the
// caller's W3C traceparent as parent), the GraphQL operation, dataloader batches, pgx
// queries, Redis commands and search calls (which carry traceparent on to the engine).
type telemetry struct {
	provider   *sdktrace.TracerProvider // nil when off
	propagator propagation.TextMapPropagator
}

func startTelemetry(ctx context.Context, cfg config) (*telemetry, error) {
	t := &telemetry{propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	if cfg.OTLPEndpoint == "" {
		return t, nil
	}
	exporter, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimRight(cfg.OTLPEndpoint, "/")+"/v1/traces"))
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	t.provider = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(cfg.ServiceName))),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.TraceSampleRatio))),
	)
	return t, nil
}

// shutdown exports the spans still buffered.
func (t *telemetry) shutdown(ctx context.Context) error {
	if t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// tracer is the tracer of the GraphQL handler.
func (t *telemetry) tracer() trace.Tracer {
	if t.provider == nil {
		return nil
	}
	return t.provider.Tracer("github.com/homegoods/storefront")
}

// handler gives each request a server span, child of the caller's traceparent.
func (t *telemetry) handler(next http.Handler) http.Handler {
	if t.provider == nil {
		return next
	}
	return otelhttp.NewHandler(next, "http", otelhttp.WithTracerProvider(t.provider), otelhttp.WithPropagators(t.propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
}

// queryTracer traces pgx queries (their SQL text, never their arguments).
func (t *telemetry) queryTracer() pgx.QueryTracer {
	if t.provider == nil {
		return nil
	}
	return otelpgx.NewTracer(otelpgx.WithTracerProvider(t.provider), otelpgx.WithDisableConnectionDetailsInAttributes())
}

// instrumentRedis traces the client's commands.
func (t *telemetry) instrumentRedis(rdb redis.UniversalClient) error {
	if t.provider == nil || rdb == nil {
		return nil
	}
	return redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(t.provider), redisotel.WithDBStatement(false))
}

// httpClient is the client of outgoing calls (the search engine) over base: spans, and
// traceparent passed on, when tracing is on.
func (t *telemetry) httpClient(base http.RoundTripper) *http.Client {
	if t.provider == nil {
		return &http.Client{Transport: base}
	}
	return &http.Client{Transport: otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(t.provider), otelhttp.WithPropagators(t.propagator))}
}

// redisLog is where go-redis's own log lines (failed dials, pool trouble) go: the logger of
// the latest server started. go-redis has one logger per process, and writes unstructured
// lines to stderr unless given another.
var (
	redisLog        atomic.Pointer[slog.Logger]
	redisLoggerOnce sync.Once
)

// logRedisThrough sends go-redis's log lines through log, as warnings.
func logRedisThrough(log *slog.Logger) {
	redisLog.Store(log)
	redisLoggerOnce.Do(func() { redis.SetLogger(redisLogger{}) })
}

type redisLogger struct{}

func (redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if log := redisLog.Load(); log != nil {
		log.WarnContext(ctx, "redis client", "msg", fmt.Sprintf(format, v...))
	}
}
