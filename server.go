// Command storefront is the GraphQL storefront API server and its operating commands:
// serve (the default), migrate, seed and token.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/idp"
	"github.com/homegoods/storefront/mail"
	"github.com/homegoods/storefront/password"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
	"github.com/homegoods/storefront/supervisor"
	"github.com/homegoods/storefront/web"
)

func main() {
	if os.Getenv("GOGC") == "" {
		// The live heap is small (tens of MB) and most garbage is per-request: collecting at
		// 5x the live heap instead of 2x cut GC work enough to raise throughput by a third in
		// the catalog benchmark, at a peak RSS still far under 150 MB. GOGC overrides it.
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit on the Go runtime's memory: near it the collector runs more often
		// rather than let GOGC=400 grow the heap to 5x, so that bursts of garbage (clients
		// sending megabytes the edge refuses) keep the process under 200 MB of RSS.
		// GOMEMLIMIT overrides it.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "storefront:", err)
		os.Exit(1)
	}
}

// defaultMemoryLimit is the soft memory limit of the Go runtime when GOMEMLIMIT is unset.
const defaultMemoryLimit = 150 << 20

// run executes one command with the given arguments and environment; main and the
// end-to-end tests both call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	logRedisThrough(log)
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log)
	case "migrate":
		return migrate(ctx, cfg, log)
	case "seed":
		return seedCatalog(ctx, cfg, log, args, stderr)
	case "token":
		return printToken(cfg, args, stdout, log)
	case "revoke":
		return revokeToken(ctx, cfg, args, log)
	case "reindex":
		return reindex(ctx, cfg, log, stdout)
	case "reconcile":
		return reconcile(ctx, cfg, log, stdout)
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, usage)
		return err
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage: storefront [command] [flags]

commands:
  serve     serve the GraphQL API (the default)
  migrate   apply the database migrations
  seed      load a demo catalog: --products N --seed S [--if-empty] [--orders N [--facts-only]]
  reindex   rebuild the Elasticsearch index from PostgreSQL behind its alias (ELASTICSEARCH_URL)
  reconcile compare the Elasticsearch index with PostgreSQL and repair drift (ELASTICSEARCH_URL)
  token     print a token signed with JWT_SECRET: --role merchandiser|customer [--customer ID] [--ttl 1h]
  revoke    revoke a token by its id on every server sharing the Redis of REDIS_URL: revoke TOKEN_ID

configuration comes from the environment; see README.md.
`

// config is the server's configuration, read from environment variables with defaults.
type config struct {
	DatabaseURL string
	DBMaxConns  int32
	// DBJobConns sizes the pool of background work; DBStatementTimeout and DBLockTimeout
	// bound each statement, and each wait for a row lock, of requests.
	DBJobConns                        int32
	DBStatementTimeout, DBLockTimeout time.Duration
	// DBWriters is how many request transactions may run at once: the rest of the pool is
	// kept for reads, which take no locks, whatever locks writers wait for.
	DBWriters int
	// RequestTimeout bounds a request, subscriptions aside.
	RequestTimeout time.Duration
	// DatabaseReadURLs are read replicas for the reads that may be slightly stale, skipped
	// while they lag the primary by more than ReplicaMaxLag or fail.
	DatabaseReadURLs []string
	ReplicaMaxLag    time.Duration
	HTTPAddr         string
	DebugAddr        string
	// JWTSecret signs and checks bearer tokens (see signingSecret); tokens live at most
	// JWTMaxTTL.
	JWTSecret       string
	JWTMaxTTL       time.Duration
	Playground      bool
	Dashboard       bool
	AutoMigrate     bool
	ComplexityLimit int
	DepthLimit      int
	MaxBodyBytes    int64
	LoaderWait      time.Duration
	ShutdownTimeout time.Duration
	// ShutdownDrain is how long a stopping instance goes on serving with /readyz failing, so
	// that load balancers take it out before it stops accepting connections.
	ShutdownDrain time.Duration
	LogLevel      slog.Level
	LogFormat     string

	// Redis: REDIS_URL for one node, or REDIS_ADDRS for a cluster (or Sentinel with
	// REDIS_MASTER_NAME); neither means the in-process cache of a single instance.
	RedisURL, RedisAddrs, RedisMasterName, RedisPassword string
	// With REDIS_ADDRS: the ACL user of the data nodes, the Sentinels' password, and TLS
	// to every node (REDIS_URL carries these in itself: rediss://user:password@...).
	RedisUsername, RedisSentinelPassword string
	RedisTLS                             bool
	// RedisCACert is the PEM file of the authority that signed the Redis servers' certificate
	// when no public one did; with TLS only.
	RedisCACert                        string
	RedisPrefix                        string
	Cache                              bool // the catalog's read-through cache
	CacheTTL, CacheL1TTL               time.Duration
	CacheL1Size, CacheMemoryEntries    int
	RateLimitPerSecond, RateLimitBurst int // complexity per client; 0 turns limits off
	// PersistedQueries is "automatic" (APQ), "allowlist" (registered operations only: the
	// *.graphql files of OperationsDir, and merchandisers' ad hoc queries) or "off".
	PersistedQueries, OperationsDir string
	// OrderHold is how long an unpaid order keeps its stock; the expiry job runs every
	// OrderExpiryInterval on one instance.
	OrderHold, OrderExpiryInterval time.Duration
	// Checkout bounds the units of an order and what one guest can hold unpaid.
	Checkout store.CheckoutLimits
	// CORSOrigins are the origins whose pages may use the API (HTTP, SSE and websocket);
	// browsers cache a preflight for CORSMaxAge.
	CORSOrigins []string
	CORSMaxAge  time.Duration
	// TrustedProxies are the proxies whose X-Forwarded-For names the client.
	TrustedProxies trustedProxies
	// Tracing: spans go to the OTLP/HTTP collector at OTLPEndpoint when it is set, for
	// TraceSampleRatio of the traces that start here (callers' sampling decisions are kept).
	OTLPEndpoint, ServiceName string
	TraceSampleRatio          float64
	// Analytics: the mode a new database gets (auto, timescaledb or postgres), how often the
	// rollups are refreshed (plain mode, on one instance) and the sales ticker polls, and how
	// raw sales facts are kept.
	AnalyticsMode                         string
	AnalyticsRefresh, SalesTickerInterval time.Duration
	Analytics                             store.AnalyticsSettings
	// Search: Elasticsearch (or OpenSearch) when ElasticsearchURL is set, PostgreSQL
	// full-text search otherwise and as the fallback.
	ElasticsearchURL, SearchIndex string
	SearchReplicas                int // replicas of an index's shard, set at creation
	ElasticsearchAPIKey           string
	// ElasticsearchCACert is the PEM file of the authority that signed the search cluster's
	// certificate when no public one did.
	ElasticsearchCACert                    string
	SearchTimeout, SearchReconcileInterval time.Duration
	// SearchInsightsInterval is how often counted searches are written for insights.
	SearchInsightsInterval time.Duration
	// SearchCacheTTL is how long an instance may answer a search again from memory; any
	// change of the catalog or the relevance controls drops those answers at once. 0: never.
	SearchCacheTTL time.Duration
	// The change feed: how long a consumer may go without a relay before it is retired, and
	// how long delivered events stay in the outbox.
	FeedConsumerTimeout, FeedRetain time.Duration
	// Mail: customers' mails go through the SMTP server at SMTPAddr, or to the log when it is
	// unset; their links lead to pages of the shop at ShopURL.
	SMTPAddr, SMTPFrom, SMTPUser, SMTPPassword, ShopURL string
	// CustomerTokenTTL is the longest a customer's access token lives; CustomerTokenIdle
	// ends it sooner when unused that long.
	CustomerTokenTTL, CustomerTokenIdle time.Duration
	// OIDC: an external identity provider whose tokens are accepted beside the server's own.
	OIDC idp.Options
}

func loadConfig(getenv func(string) string) (config, error) {
	e := env{getenv: getenv}
	cfg := config{
		DatabaseURL:        e.str("DATABASE_URL", "postgres://storefront@127.0.0.1:5433/storefront?sslmode=disable"),
		DBMaxConns:         int32(e.int("DB_MAX_CONNS", 16)),
		DBJobConns:         int32(e.int("DB_JOB_CONNS", 6)),
		DBWriters:          e.int("DB_WRITERS", 0),
		DBStatementTimeout: e.duration("DB_STATEMENT_TIMEOUT", 5*time.Second),
		DBLockTimeout:      e.duration("DB_LOCK_TIMEOUT", 2*time.Second),
		RequestTimeout:     e.duration("REQUEST_TIMEOUT", 10*time.Second),
		DatabaseReadURLs:   splitURLs(e.str("DATABASE_READ_URL", "")),
		ReplicaMaxLag:      e.duration("REPLICA_MAX_LAG", time.Second),
		HTTPAddr:           e.str("HTTP_ADDR", "127.0.0.1:8080"),
		DebugAddr:          e.str("DEBUG_ADDR", ""),
		JWTSecret:          e.str("JWT_SECRET", ""),
		JWTMaxTTL:          e.duration("JWT_MAX_TTL", resolvers.DefaultMaxTokenTTL),
		Playground:         e.bool("PLAYGROUND", true),
		Dashboard:          e.bool("DASHBOARD", true),
		AutoMigrate:        e.bool("AUTO_MIGRATE", true),
		ComplexityLimit:    e.int("COMPLEXITY_LIMIT", 10_000),
		DepthLimit:         e.int("DEPTH_LIMIT", 12),
		MaxBodyBytes:       int64(e.int("MAX_BODY_BYTES", 1<<20)),
		LoaderWait:         e.duration("LOADER_WAIT", time.Millisecond),
		ShutdownTimeout:    e.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		ShutdownDrain:      e.duration("SHUTDOWN_DRAIN", 0),
		LogFormat:          e.str("LOG_FORMAT", "text"),

		RedisURL:              e.str("REDIS_URL", ""),
		RedisAddrs:            e.str("REDIS_ADDRS", ""),
		RedisMasterName:       e.str("REDIS_MASTER_NAME", ""),
		RedisPassword:         e.str("REDIS_PASSWORD", ""),
		RedisUsername:         e.str("REDIS_USERNAME", ""),
		RedisSentinelPassword: e.str("REDIS_SENTINEL_PASSWORD", ""),
		RedisTLS:              e.bool("REDIS_TLS", false),
		RedisCACert:           e.str("REDIS_CA_CERT", ""),
		RedisPrefix:           e.str("REDIS_PREFIX", "sf:"),
		Cache:                 e.bool("CACHE", true),
		CacheTTL:              e.duration("CACHE_TTL", 5*time.Minute),
		CacheL1Size:           e.int("CACHE_L1_SIZE", 10_000),
		CacheL1TTL:            e.duration("CACHE_L1_TTL", time.Second),
		CacheMemoryEntries:    e.int("CACHE_MEMORY_ENTRIES", 200_000),
		RateLimitPerSecond:    e.int("RATE_LIMIT_PER_SECOND", 5000),
		RateLimitBurst:        e.int("RATE_LIMIT_BURST", 25_000),
		PersistedQueries:      e.str("PERSISTED_QUERIES", "automatic"),
		OperationsDir:         e.str("OPERATIONS_DIR", ""),
		OrderHold:             e.duration("ORDER_HOLD", store.DefaultOrderHold),
		OrderExpiryInterval:   e.duration("ORDER_EXPIRY_INTERVAL", time.Minute),
		Checkout: store.CheckoutLimits{
			LineUnits:       e.int("MAX_UNITS_PER_LINE", store.DefaultCheckoutLimits.LineUnits),
			OrderUnits:      e.int("MAX_UNITS_PER_ORDER", store.DefaultCheckoutLimits.OrderUnits),
			GuestOpenOrders: e.int("MAX_UNPAID_GUEST_ORDERS", store.DefaultCheckoutLimits.GuestOpenOrders),
			GuestHold:       e.duration("GUEST_ORDER_HOLD", store.DefaultCheckoutLimits.GuestHold),
		},
		CORSOrigins:         e.list("CORS_ORIGINS"),
		CORSMaxAge:          e.duration("CORS_MAX_AGE", 10*time.Minute),
		OTLPEndpoint:        e.str("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
		ServiceName:         e.str("OTEL_SERVICE_NAME", "storefront"),
		TraceSampleRatio:    e.float("TRACE_SAMPLE_RATIO", 1),
		AnalyticsMode:       e.str("ANALYTICS", analyticsAuto),
		AnalyticsRefresh:    e.duration("ANALYTICS_REFRESH_INTERVAL", time.Minute),
		SalesTickerInterval: e.duration("SALES_TICKER_INTERVAL", 2*time.Second),
		Analytics: store.AnalyticsSettings{
			CompressAfter: e.duration("ANALYTICS_COMPRESS_AFTER", store.DefaultCompressAfter),
			RetainFor:     e.duration("ANALYTICS_RETAIN_FOR", 0),
		},
		ElasticsearchURL:        e.str("ELASTICSEARCH_URL", ""),
		SearchIndex:             e.str("SEARCH_INDEX", "products"),
		SearchReplicas:          e.int("SEARCH_REPLICAS", 0),
		ElasticsearchAPIKey:     e.str("ELASTICSEARCH_API_KEY", ""),
		ElasticsearchCACert:     e.str("ELASTICSEARCH_CA_CERT", ""),
		SearchTimeout:           e.duration("SEARCH_TIMEOUT", 500*time.Millisecond),
		SearchReconcileInterval: e.duration("SEARCH_RECONCILE_INTERVAL", 10*time.Minute),
		SearchInsightsInterval:  e.duration("SEARCH_INSIGHTS_INTERVAL", 5*time.Second),
		SearchCacheTTL:          e.duration("SEARCH_CACHE_TTL", 2*time.Second),
		FeedConsumerTimeout:     e.duration("FEED_CONSUMER_TIMEOUT", 15*time.Minute),
		FeedRetain:              e.duration("FEED_RETAIN", 10*time.Minute),
		SMTPAddr:                e.str("SMTP_ADDR", ""),
		SMTPFrom:                e.str("SMTP_FROM", "shop@localhost"),
		SMTPUser:                e.str("SMTP_USER", ""),
		SMTPPassword:            e.str("SMTP_PASSWORD", ""),
		ShopURL:                 e.str("SHOP_URL", "http://localhost:8080"),
		CustomerTokenTTL:        e.duration("CUSTOMER_TOKEN_TTL", resolvers.DefaultCustomerTokenTTL),
		CustomerTokenIdle:       e.duration("CUSTOMER_TOKEN_IDLE", resolvers.DefaultCustomerTokenIdle),
		OIDC: idp.Options{Issuer: e.str("OIDC_ISSUER", ""), Audience: e.str("OIDC_AUDIENCE", ""), JWKSURL: e.str("OIDC_JWKS_URL", ""),
			RoleClaim: e.str("OIDC_ROLE_CLAIM", ""), MerchandiserRole: e.str("OIDC_MERCHANDISER_ROLE", "merchandiser")},
	}
	if (cfg.OIDC.Issuer == "") != (cfg.OIDC.Audience == "") {
		e.errs = append(e.errs, errors.New("OIDC_ISSUER and OIDC_AUDIENCE go together"))
	}
	if cfg.Cache && cfg.CacheTTL >= cfg.FeedConsumerTimeout {
		// A retired cache consumer is not resynced: its entries must expire first.
		e.errs = append(e.errs, fmt.Errorf("CACHE_TTL (%s) must be shorter than FEED_CONSUMER_TIMEOUT (%s)", cfg.CacheTTL, cfg.FeedConsumerTimeout))
	}
	switch cfg.PersistedQueries {
	case "automatic", "allowlist", "off":
	default:
		e.errs = append(e.errs, fmt.Errorf("PERSISTED_QUERIES: %q is not automatic, allowlist or off", cfg.PersistedQueries))
	}
	switch cfg.AnalyticsMode {
	case analyticsAuto, analyticsTimescaleDB, analyticsPostgres:
	default:
		e.errs = append(e.errs, fmt.Errorf("ANALYTICS: %q is not auto, timescaledb or postgres", cfg.AnalyticsMode))
	}
	var err error
	if cfg.TrustedProxies, err = parseTrustedProxies(e.list("TRUSTED_PROXIES")); err != nil {
		e.errs = append(e.errs, err)
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(e.str("LOG_LEVEL", "info"))); err != nil {
		e.errs = append(e.errs, fmt.Errorf("LOG_LEVEL: %w", err))
	}
	return cfg, errors.Join(e.errs...)
}

// env reads typed environment variables and collects every malformed one.
type env struct {
	getenv func(string) string
	errs   []error
}

func (e *env) str(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

// list reads a comma-separated list; unset is empty.
func (e *env) list(key string) []string {
	var out []string
	for _, v := range strings.Split(e.getenv(key), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (e *env) int(key string, def int) int {
	v, err := strconv.Atoi(e.str(key, strconv.Itoa(def)))
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", key, err))
	}
	return v
}

func (e *env) float(key string, def float64) float64 {
	v, err := strconv.ParseFloat(e.str(key, strconv.FormatFloat(def, 'g', -1, 64)), 64)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", key, err))
	}
	return v
}

func (e *env) bool(key string, def bool) bool {
	v, err := strconv.ParseBool(e.str(key, strconv.FormatBool(def)))
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", key, err))
	}
	return v
}

func (e *env) duration(key string, def time.Duration) time.Duration {
	v, err := time.ParseDuration(e.str(key, def.String()))
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: %w", key, err))
	}
	return v
}

// logValue lists the configuration with secrets masked.
func (c config) logValue() []any {
	secret := "set"
	if c.JWTSecret == "" {
		secret = "unset"
	}
	return []any{"database", maskURL(c.DatabaseURL), "read_replicas", len(c.DatabaseReadURLs), "addr", c.HTTPAddr, "jwt_secret", secret,
		"playground", c.Playground, "dashboard", c.Dashboard, "db_max_conns", c.DBMaxConns, "loader_wait", c.LoaderWait,
		"redis", maskURL(c.RedisURL) + c.RedisAddrs, "cache", c.Cache, "rate_limit_per_second", c.RateLimitPerSecond,
		"elasticsearch", maskURLs(c.ElasticsearchURL), "smtp", c.SMTPAddr}
}

// errNoJWTSecret refuses to sign or check tokens without a secret of the deployment's own:
// there is no default secret, since a default is public and anyone could sign with it.
var errNoJWTSecret = errors.New("JWT_SECRET is unset: set it to a random secret of your own (make run keeps one in .run/jwt-secret)")

// signingSecret is the key of bearer tokens: JWT_SECRET, or, on a development server (the
// playground on), a random secret of this process alone, which no token signed elsewhere
// matches. A server with the playground off is a production one and refuses to start
// without JWT_SECRET.
func (c config) signingSecret() (string, error) {
	switch {
	case c.JWTSecret != "":
		return c.JWTSecret, nil
	case c.Playground:
		return rand.Text(), nil
	}
	return "", fmt.Errorf("%w: a server with PLAYGROUND=false does not start without it", errNoJWTSecret)
}

// maskURL hides the password of a database or Redis URL.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		// A key=value connection string.
		return dsnPassword.ReplaceAllString(raw, "password=****")
	}
	if _, set := u.User.Password(); set {
		u.User = url.UserPassword(u.User.Username(), "****")
	}
	return u.String()
}

var dsnPassword = regexp.MustCompile(`password=\S+`)

// maskURLs is maskURL for a comma-separated list of URLs.
func maskURLs(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		parts[i] = maskURL(p)
	}
	return strings.Join(parts, ",")
}

// openDB opens a pool of maxConns connections (unless the URL sets pool_max_conns) whose
// sessions start with params (unless the URL sets them); tracer, when not nil, traces its
// queries.
func openDB(ctx context.Context, cfg config, maxConns int32, params map[string]string, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	return db.Open(ctx, cfg.DatabaseURL, func(pc *pgxpool.Config) {
		if !strings.Contains(cfg.DatabaseURL, "pool_max_conns") {
			pc.MaxConns = maxConns
		}
		for k, v := range params {
			if _, set := pc.ConnConfig.RuntimeParams[k]; !set {
				pc.ConnConfig.RuntimeParams[k] = v
			}
		}
		if tracer != nil {
			pc.ConnConfig.Tracer = tracer
		}
	})
}

// writers is DB_WRITERS, by default half of the requests' pool.
func (c config) writers(requests *pgxpool.Pool) int {
	if c.DBWriters > 0 {
		return c.DBWriters
	}
	return max(1, int(requests.Config().MaxConns)/2)
}

// pools are the server's two connection pools. Requests' statements and waits for row locks
// are bounded, so that a lock held elsewhere or a runaway query fails a request in seconds
// (UNAVAILABLE) instead of holding its connection until the pool is empty; background work
// (migrations, refreshes, the change feed, reconciles) may legitimately run for minutes and
// has a pool of its own, which requests never wait for.
type pools struct{ requests, jobs *pgxpool.Pool }

func openPools(ctx context.Context, cfg config, tracer pgx.QueryTracer) (*pools, error) {
	requests, err := openDB(ctx, cfg, cfg.DBMaxConns, map[string]string{
		"statement_timeout": fmt.Sprint(cfg.DBStatementTimeout.Milliseconds()),
		"lock_timeout":      fmt.Sprint(cfg.DBLockTimeout.Milliseconds()),
	}, tracer)
	if err != nil {
		return nil, err
	}
	jobs, err := openDB(ctx, cfg, cfg.DBJobConns, nil, tracer)
	if err != nil {
		requests.Close()
		return nil, err
	}
	return &pools{requests: requests, jobs: jobs}, nil
}

func (p *pools) close() {
	p.requests.Close()
	p.jobs.Close()
}

// serve runs the API until ctx ends, then shuts down in order: the HTTP server stops
// accepting and drains in-flight requests while every subscription ends (see streams), the
// background workers stop and are waited for, and only then do Redis and the pool close.
func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	log.Info("starting", cfg.logValue()...)
	secret, err := cfg.signingSecret()
	if err != nil {
		return err
	}
	if cfg.CustomerTokenTTL > cfg.JWTMaxTTL {
		return fmt.Errorf("CUSTOMER_TOKEN_TTL (%s) exceeds JWT_MAX_TTL (%s): no token may live that long", cfg.CustomerTokenTTL, cfg.JWTMaxTTL)
	}
	if cfg.CustomerTokenIdle > cfg.CustomerTokenTTL {
		return fmt.Errorf("CUSTOMER_TOKEN_IDLE (%s) exceeds CUSTOMER_TOKEN_TTL (%s)", cfg.CustomerTokenIdle, cfg.CustomerTokenTTL)
	}
	if cfg.JWTSecret == "" {
		log.Warn("JWT_SECRET is unset: this process checks tokens with a random secret of its own, so no token is accepted; set JWT_SECRET (make run does)")
	}
	cfg.JWTSecret = secret
	tel, err := startTelemetry(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		// After the HTTP server has drained: the last requests' spans go out too.
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.shutdown(flushCtx); err != nil {
			log.Warn("tracing: spans not exported", "err", err)
		}
	}()
	dbs, err := openPools(ctx, cfg, tel.queryTracer())
	if err != nil {
		return err
	}
	defer dbs.close()
	if cfg.AutoMigrate {
		if err := applyMigrations(ctx, dbs.jobs, cfg.AnalyticsMode, log); err != nil {
			return err
		}
	}

	reads, closeReplicas, err := openReads(cfg, dbs.requests, tel.queryTracer(), log)
	if err != nil {
		return err
	}
	defer closeReplicas()
	storeOptions := []store.Option{store.WithOrderHold(cfg.OrderHold), store.WithCheckoutLimits(cfg.Checkout)}
	st := store.New(dbs.requests, append(storeOptions, store.WithWriters(cfg.writers(dbs.requests)), store.WithReads(reads))...)
	jobs := store.New(dbs.jobs, storeOptions...)
	if err := configureAnalytics(ctx, cfg, jobs, log); err != nil {
		return err
	}
	caches, err := newCaching(cfg, st, log)
	if err != nil {
		return err
	}
	defer caches.close()
	if err := tel.instrumentRedis(caches.redis); err != nil {
		return fmt.Errorf("trace redis: %w", err)
	}
	if err := caches.registerOperations(ctx, cfg.OperationsDir, log); err != nil {
		return fmt.Errorf("persisted operations: %w", err)
	}
	reg := prometheus.NewRegistry()
	searchTransport, err := cfg.searchTransport()
	if err != nil {
		return err
	}
	searches, err := newSearching(cfg, dbs, newSearchMetrics(reg), tel.httpClient(searchTransport), caches.bus, log)
	if err != nil {
		return err
	}
	searches.postgres.ReadFrom(reads)
	changes := feed.New(dbs.jobs, feed.Options{ConsumerTimeout: cfg.FeedConsumerTimeout, Retain: cfg.FeedRetain,
		BeforeCommit: feedFaultHook, Log: log})
	ticker := jobs.NewSalesTicker(cfg.SalesTickerInterval, log)
	mailer, err := newMailer(ctx, cfg, changes, log)
	if err != nil {
		return err
	}
	auth, err := newAuth(ctx, cfg, st, caches, log)
	if err != nil {
		return err
	}

	// Workers run until serve returns, also when it returns early with an error.
	workerCtx, stopWorkers := context.WithCancel(ctx)
	workers := supervisor.New(workerCtx, supervisor.Options{Log: log, OnRestart: newWorkerMetrics(reg)})
	defer func() { stopWorkers(); workers.Wait() }()
	workers.Go("order-expiry", func(ctx context.Context) error { return jobs.RunOrderExpiry(ctx, cfg.OrderExpiryInterval, log) })
	workers.Go("analytics-refresh", func(ctx context.Context) error { return jobs.RunAnalyticsRefresh(ctx, cfg.AnalyticsRefresh, log) })
	workers.Go("sales-ticker", ticker.Run)
	workers.Go("feed-maintenance", changes.Maintain)
	workers.Go("replica-probes", reads.Run)
	caches.start(workers, changes, jobs, reads, log)
	searches.start(workers, changes, cfg)
	workers.Go("relay:"+mailer.Name, changes.Relay(mailer))
	if cfg.DebugAddr != "" {
		workers.Go("debug-server", func(ctx context.Context) error { return serveDebug(ctx, cfg.DebugAddr, log) })
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	registerFeedMetrics(reg, changes)
	registerReplicaMetrics(reg, reads)
	streams := &streams{end: ctx}
	var draining atomic.Bool
	srv := &http.Server{
		Handler:           streams.wrap(routes(cfg, reg, dbs, &draining, st, ticker, caches, searches, auth, tel, log)),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "playground", cfg.Playground)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if cfg.ShutdownDrain > 0 {
		draining.Store(true)
		log.Info("shutting down: /readyz fails while load balancers take this instance out", "drain", cfg.ShutdownDrain)
		time.Sleep(cfg.ShutdownDrain)
	}
	log.Info("shutting down: finishing in-flight requests, ending subscriptions")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if cut := streams.wait(); cut > 0 {
		log.Warn("shutting down: subscriptions whose clients did not close in time were cut", "streams", cut)
	}
	stopWorkers()
	workers.Wait()
	log.Info("stopped")
	return nil
}

// configureAnalytics applies the storage settings of sales facts and logs the mode.
func configureAnalytics(ctx context.Context, cfg config, st *store.Store, log *slog.Logger) error {
	if err := st.ConfigureAnalytics(ctx, cfg.Analytics); err != nil {
		return fmt.Errorf("configure analytics: %w", err)
	}
	mode, err := st.AnalyticsMode(ctx)
	if err != nil {
		return err
	}
	// Before serving: checkouts write facts of today from the first request on.
	if err := st.PrepareAnalytics(ctx); err != nil {
		return fmt.Errorf("prepare analytics: %w", err)
	}
	log.Info("analytics", "mode", mode, "refresh_every", cfg.AnalyticsRefresh)
	return nil
}

// routes wires the HTTP endpoints.
func routes(cfg config, reg *prometheus.Registry, dbs *pools, draining *atomic.Bool, st *store.Store, ticker *store.SalesTicker, caches *caching, searches *searching, auth *resolvers.Auth, tel *telemetry, log *slog.Logger) http.Handler {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerPoolMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"pool": "requests"}, reg), dbs.requests)
	registerPoolMetrics(prometheus.WrapRegistererWith(prometheus.Labels{"pool": "jobs"}, reg), dbs.jobs)
	registerCacheMetrics(reg, caches)

	var batches resolvers.Batches = st
	if caches.catalog != nil {
		batches = caches.catalog
	}
	extensions := []graphql.HandlerExtension{readYourWrites{}}
	if caches.allowlist != nil {
		extensions = append(extensions, caches.allowlist)
	}
	if caches.limiter != nil {
		extensions = append(extensions, resolvers.NewComplexityRateLimit(caches.limiter, resolvers.ClientKey, resolvers.OperationCost, log).
			ChargeBeforeParsing(resolvers.ParsingCost))
	}
	if caches.apq != nil { // after the rate limit: what is stored has been charged
		extensions = append(extensions, resolvers.NewPersistedQueries(caches.apq,
			resolvers.PersistedQueryOptions{Limiter: caches.limiter, Key: resolvers.ClientKey}))
	}
	crossOrigin := newCORS(cfg.CORSOrigins, cfg.CORSMaxAge)
	api := resolvers.NewHandler(resolvers.Config{
		Catalog:         st,
		Commerce:        st,
		Analytics:       st,
		Searcher:        searches.service,
		SearchControls:  searches.controls,
		Ticker:          ticker,
		CheckOrigin:     originAllowed(crossOrigin),
		Batches:         batches,
		Sessions:        caches.sessions,
		Rankings:        caches.rankings,
		Alerts:          caches.alerts,
		Extensions:      extensions,
		Auth:            auth,
		Customers:       st,
		Passwords:       password.NewHasher(password.Default, hashConcurrency),
		AccountLimits:   caches.accountLimits,
		Log:             log,
		Metrics:         resolvers.NewMetrics(reg),
		Introspection:   cfg.Playground,
		ComplexityLimit: cfg.ComplexityLimit,
		DepthLimit:      cfg.DepthLimit,
		LoaderWait:      cfg.LoaderWait,
		Tracer:          tel.tracer(),
	})

	mux := http.NewServeMux()
	mux.Handle("/graphql", crossOrigin.Handler(limitBody(cfg.MaxBodyBytes, api)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", readiness(st, draining))
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	web.Register(mux, web.Options{Playground: cfg.Playground, Dashboard: cfg.Dashboard})
	return tel.handler(withClientAddr(cfg.TrustedProxies, withRequestID(logRequests(log, withDeadline(cfg.RequestTimeout, mux)))))
}

// hashConcurrency bounds the password hashes computed at once: each holds
// password.Default.Memory (19 MiB).
const hashConcurrency = 4

// newAuth returns the checker of bearer tokens: the server's own, and with OIDC_ISSUER
// those of that identity provider, whose keys it finds through the provider's discovery
// document (read now) unless OIDC_JWKS_URL names them.
func newAuth(ctx context.Context, cfg config, st *store.Store, caches *caching, log *slog.Logger) (*resolvers.Auth, error) {
	auth := resolvers.NewAuth([]byte(cfg.JWTSecret), resolvers.AuthOptions{MaxTTL: cfg.JWTMaxTTL, Revocations: caches.revocations,
		Sessions: caches.sessions, CustomerTokenTTL: cfg.CustomerTokenTTL, CustomerTokenIdle: cfg.CustomerTokenIdle})
	if cfg.OIDC.Issuer == "" {
		return auth, nil
	}
	provider, err := idp.New(ctx, cfg.OIDC)
	if err != nil {
		return nil, fmt.Errorf("OIDC_ISSUER: %w", err)
	}
	auth.AcceptProvider(provider, st)
	log.Info("identity provider", "issuer", cfg.OIDC.Issuer, "audience", cfg.OIDC.Audience, "role_claim", cfg.OIDC.RoleClaim)
	return auth, nil
}

// newMailer returns the change feed's mail consumer, sending through SMTP_ADDR or to the
// log, and registers it so that no mail asked for from now on is missed, even before its
// relay first runs.
func newMailer(ctx context.Context, cfg config, changes *feed.Feed, log *slog.Logger) (feed.Consumer, error) {
	var sender mail.Sender = mail.Log{Log: log}
	if cfg.SMTPAddr != "" {
		sender = mail.SMTP{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, User: cfg.SMTPUser, Password: cfg.SMTPPassword}
	} else {
		log.Warn("mail: SMTP_ADDR is unset: customers' mails are logged, not sent")
	}
	consumer, err := mail.NewConsumer(sender, cfg.ShopURL, log)
	if err != nil {
		return feed.Consumer{}, fmt.Errorf("SHOP_URL: %w", err)
	}
	return consumer, changes.Register(ctx, consumer.Name)
}

// serveDebug serves the pprof profiles on their own address, kept off the public port,
// until ctx ends.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := context.AfterFunc(ctx, func() { _ = srv.Close() })
	defer stop()
	log.Info("debug server listening", "addr", addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("debug server: %w", err)
	}
	return ctx.Err()
}

// readiness answers 200 and the analytics mode while PostgreSQL answers, 503 otherwise and
// once the instance drains before it stops (SHUTDOWN_DRAIN).
func readiness(st *store.Store, draining *atomic.Bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		mode, err := st.AnalyticsMode(ctx)
		if err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintf(w, "ready\nanalytics: %s\n", mode)
	}
}

// feedFaultHook is nil in production. The end-to-end tests set it in the server processes
// they start, to fail or stall deliveries of the change feed (feed.Options.BeforeCommit).
var feedFaultHook func(consumer string, events []model.OutboxEvent) error

// registerFeedMetrics exposes each consumer's queue: its length, the age of its oldest
// event, and whether it is active.
func registerFeedMetrics(reg prometheus.Registerer, changes *feed.Feed) {
	reg.MustRegister(feedCollector{changes: changes,
		backlog: prometheus.NewDesc("storefront_feed_backlog", "Events queued for a consumer of the change feed.", []string{"consumer"}, nil),
		age: prometheus.NewDesc("storefront_feed_oldest_event_age_seconds",
			"Age of the oldest event queued for a consumer (0 when none).", []string{"consumer"}, nil),
		active: prometheus.NewDesc("storefront_feed_consumer_active",
			"1 while a consumer is fed, 0 once retired for want of a relay.", []string{"consumer"}, nil),
	})
}

// feedCollector reads the feed's backlogs when scraped.
type feedCollector struct {
	changes              *feed.Feed
	backlog, age, active *prometheus.Desc
}

func (c feedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.backlog
	ch <- c.age
	ch <- c.active
}

func (c feedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	backlogs, err := c.changes.Backlogs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.backlog, err)
		return
	}
	for _, b := range backlogs {
		ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(b.Pending), b.Consumer)
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, b.OldestAge.Seconds(), b.Consumer)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, boolFloat(b.Active), b.Consumer)
	}
}

// newWorkerMetrics counts the restarts of background workers, and returns the counter's
// increment for supervisor.Options.OnRestart.
func newWorkerMetrics(reg prometheus.Registerer) func(worker string) {
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "storefront_worker_restarts_total",
		Help: "Restarts of a background worker after it failed or panicked."}, []string{"worker"})
	reg.MustRegister(restarts)
	return func(worker string) { restarts.WithLabelValues(worker).Inc() }
}

// registerPoolMetrics exposes the connection pool's figures.
func registerPoolMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) {
	gauge := func(name, help string, f func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "storefront_db_pool_" + name, Help: help},
			func() float64 { return f(pool.Stat()) })
	}
	counter := func(name, help string, f func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "storefront_db_pool_" + name, Help: help},
			func() float64 { return f(pool.Stat()) })
	}
	reg.MustRegister(
		gauge("acquired_conns", "Connections in use.", func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }),
		gauge("idle_conns", "Idle connections.", func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }),
		gauge("total_conns", "Open connections.", func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }),
		gauge("max_conns", "Pool size limit.", func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }),
		counter("acquires_total", "Connections acquired.", func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }),
		counter("empty_acquires_total", "Acquires that had to wait for a connection.", func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }),
		counter("acquire_wait_seconds_total", "Time spent waiting for a connection.", func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }),
	)
}
