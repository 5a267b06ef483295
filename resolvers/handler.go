package resolvers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/trace"

	"github.com/homegoods/storefront/graph"
	"github.com/homegoods/storefront/password"
)

// Config is what the GraphQL handler is built from.
type Config struct {
	Catalog Catalog
	// Batches serves the dataloaders' hot loads; nil means the catalog itself.
	Batches   Batches
	Commerce  Commerce
	Sessions  Sessions
	Rankings  Rankings
	Alerts    Alerts
	Searcher  Searcher
	Analytics Analytics
	Ticker    SalesTicker
	// SearchControls serve the merchandisers' relevance controls; nil turns them off.
	SearchControls SearchControls
	Auth           *Auth
	// Customers are the accounts; Passwords hash theirs, AccountLimits slow guessing.
	// Customers' access tokens are sessions of Auth (AuthOptions.Sessions).
	Customers     Customers
	Passwords     *password.Hasher
	AccountLimits AccountLimits
	Log           *slog.Logger
	// Metrics records operations when set.
	Metrics *Metrics
	// Introspection serves the schema to tools such as the playground.
	Introspection   bool
	ComplexityLimit int
	DepthLimit      int
	// LoaderWait is how long a dataloader collects keys before it runs a batch.
	LoaderWait time.Duration
	// CheckOrigin says whether a websocket may open from the request's origin: the same
	// policy as CORS, since browsers apply none to websockets. Nil lets same-origin pages
	// (and clients that are no browser) in only.
	CheckOrigin func(r *http.Request) bool
	// Extensions run after the cost limit, which rate limits need: they charge its price
	// (OperationCost).
	Extensions []graphql.HandlerExtension
	// Tracer, when set, traces operations and dataloader batches; nil costs nothing.
	Tracer trace.Tracer
}

// NewHandler returns the /graphql endpoint: POST and GET, subscriptions over websocket and
// server-sent events, authorization, per-response dataloaders, limits, error presentation
// and metrics.
func NewHandler(cfg Config) http.Handler {
	if cfg.Batches == nil {
		cfg.Batches = cfg.Catalog
	}
	c := graph.Config{
		Resolvers:  &Resolver{Config: cfg, accounts: newAccounts(cfg)},
		Directives: graph.DirectiveRoot{HasRole: hasRole},
	}
	srv := handler.New(graph.NewExecutableSchema(c))
	// SSE before POST, which would take its requests (as gqlgen's docs say). The pings keep
	// idle subscriptions alive through proxies and find dead clients.
	srv.AddTransport(transport.SSE{KeepAlivePingInterval: streamPing})
	srv.AddTransport(transport.Websocket{InitFunc: cfg.Auth.websocketInit,
		KeepAlivePingInterval: streamPing, PingPongInterval: streamPing,
		Implementation: protocolWebsocket{initTimeout: websocketInitTimeout,
			// With CheckOrigin, the origin was checked before the upgrade (checkOrigin below).
			inner: transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{InsecureSkipVerify: cfg.CheckOrigin != nil}}}})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(httpTransport{})
	// The parser stops at maxTokens, so that a document's parse costs and weighs little
	// whatever a client sends, and parsed documents are kept only when small.
	srv.SetParserTokenLimit(maxTokens)
	srv.SetQueryCache(smallDocuments{lru.New[*ast.QueryDocument](maxCachedDocuments)})
	// Suggestions name fields and arguments: they are for those who may see the schema.
	srv.SetDisableSuggestion(!cfg.Introspection)
	srv.SetErrorPresenter(errorPresenter(cfg.Log, cfg.Introspection))
	srv.SetRecoverFunc(recoverFunc(cfg.Log))
	srv.AroundResponses(tokenEnded)
	srv.Use(loaderScope{kinds: newLoaderKinds(cfg.Batches, cfg.Catalog, loaderOptions{wait: cfg.LoaderWait, tracer: cfg.Tracer})})
	if cfg.Tracer != nil {
		srv.Use(operationTracing{tracer: cfg.Tracer})
	}
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	}
	srv.Use(&inputCheck{introspection: cfg.Introspection})
	srv.Use(depthLimit{max: cfg.DepthLimit})
	srv.Use(costLimit{limit: cfg.ComplexityLimit})
	for _, e := range cfg.Extensions {
		srv.Use(e)
	}
	if cfg.Metrics != nil {
		srv.Use(cfg.Metrics)
	}

	return checkOrigin(cfg.CheckOrigin, withSocketSlot(cfg.Auth.Middleware(sessionMiddleware(cfg.Sessions, lastingStreams(srv)))))
}

// checkOrigin refuses websocket upgrades from origins that allowed does not let in.
func checkOrigin(allowed func(*http.Request) bool, next http.Handler) http.Handler {
	if allowed == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" && !allowed(r) {
			w.Header().Set("Content-Type", mediaJSON)
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"errors":[{"message":"this origin may not open a websocket","extensions":{"code":"FORBIDDEN"}}]}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// streamPing is how often an idle subscription is pinged.
const streamPing = 15 * time.Second

// lastingStreams lifts the server's read and write deadlines, sized for queries, from SSE
// streams: they last as long as their subscription. (Hijacking a websocket's connection
// lifts them.)
func lastingStreams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (transport.SSE{}).Supports(r) {
			rc := http.NewResponseController(w)
			// These fail only for a writer without deadlines, which has none to lift.
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// maxTokens bounds the documents the parser reads: a document of that many tokens takes a
// few milliseconds to parse and validate and about a megabyte as a syntax tree. The
// playground's introspection query has about 700; an operation at the cost limit, a few
// thousand.
const maxTokens = 10_000

// The cache of parsed documents keeps up to maxCachedDocuments of at most
// maxCachedDocument bytes of text each (the text is the key): 256 x (4 KiB + the tree,
// about 25 times the text) is some 26 MB in the worst case. Real clients send far fewer
// and smaller documents; larger ones are parsed every time, and charged for it.
const (
	maxCachedDocuments = 256
	maxCachedDocument  = 4 << 10
)

// smallDocuments is the cache of parsed documents, keeping small ones only: a client that
// sends large documents must not fill the server's memory with their trees.
type smallDocuments struct {
	graphql.Cache[*ast.QueryDocument]
}

func (c smallDocuments) Add(ctx context.Context, query string, doc *ast.QueryDocument) {
	if len(query) <= maxCachedDocument {
		c.Cache.Add(ctx, query, doc)
	}
}
