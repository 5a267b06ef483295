package resolvers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/seed"
	"github.com/homegoods/storefront/store"
)

const testSecret = "test-secret"

// statementCounter is a pgx tracer that counts the statements sent to PostgreSQL.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// syncBuffer is a log sink that tests read while handlers write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// api is the GraphQL handler on a real database with a seeded catalog.
type api struct {
	t          *testing.T
	srv        *httptest.Server
	pool       *pgxpool.Pool
	auth       *resolvers.Auth
	statements *statementCounter
	logs       *syncBuffer
}

type apiOption func(*resolvers.Config)

func newAPI(t *testing.T, products int, opts ...apiOption) *api {
	t.Helper()
	counter := &statementCounter{}
	pool := dbtest.Open(t, dbtest.NewURL(t), func(c *pgxpool.Config) { c.ConnConfig.Tracer = counter })
	if _, err := seed.Catalog(context.Background(), pool, seed.Options{Products: products, Seed: 5}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	logs := &syncBuffer{}
	cfg := resolvers.Config{
		Catalog:         store.New(pool),
		Auth:            resolvers.NewAuth([]byte(testSecret), resolvers.AuthOptions{}),
		Log:             slog.New(slog.NewTextHandler(logs, nil)),
		Introspection:   true,
		ComplexityLimit: 10_000,
		DepthLimit:      12,
		// Longer than in production: under -race on two shared cores, goroutines of one
		// page may take more than a millisecond to reach their loaders.
		LoaderWait: 10 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv := httptest.NewServer(resolvers.NewHandler(cfg))
	t.Cleanup(srv.Close)
	return &api{t: t, srv: srv, pool: pool, auth: cfg.Auth, statements: counter, logs: logs}
}

// gqlError is one error of a response.
type gqlError struct {
	Message    string `json:"message"`
	Path       []any  `json:"path"`
	Extensions struct {
		Code         string   `json:"code"`
		ArgumentPath []string `json:"argumentPath"`
	} `json:"extensions"`
}

type response struct {
	status int
	Data   map[string]any `json:"data"`
	Errors []gqlError     `json:"errors"`
}

// code returns the code of the only error, or fails.
func (r response) code(t *testing.T) string {
	t.Helper()
	if len(r.Errors) != 1 {
		t.Fatalf("errors: got %+v; want exactly one", r.Errors)
	}
	return r.Errors[0].Extensions.Code
}

// do posts a query as the bearer of token ("" for a guest).
func (a *api) do(token, query string, vars map[string]any) response {
	a.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, a.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode}
	if err := json.Unmarshal(raw, &out); err != nil {
		a.t.Fatalf("response %q: %v", raw, err)
	}
	return out
}

// ok posts a query and fails on any error.
func (a *api) ok(token, query string, vars map[string]any) map[string]any {
	a.t.Helper()
	r := a.do(token, query, vars)
	if len(r.Errors) > 0 {
		a.t.Fatalf("query %s: errors %+v", query, r.Errors)
	}
	return r.Data
}

func (a *api) token(role model.Role, customer string) string {
	a.t.Helper()
	tok, err := a.auth.Token(role, customer, time.Hour)
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

func (a *api) merchandiser() string { return a.token(model.RoleMerchandiser, "") }

func (a *api) count(sql string, args ...any) int {
	a.t.Helper()
	var n int
	if err := a.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		a.t.Fatal(err)
	}
	return n
}

func (a *api) text(sql string, args ...any) string {
	a.t.Helper()
	var s string
	if err := a.pool.QueryRow(context.Background(), sql, args...).Scan(&s); err != nil {
		a.t.Fatal(err)
	}
	return s
}

// dig walks a decoded JSON value by object keys and array indexes.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			s, _ := v.([]any)
			if k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func gid(typ, id string) string { return "gid://storefront/" + typ + "/" + id }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
