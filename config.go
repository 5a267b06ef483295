package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/homegoods/storefront/idp"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
)

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

// splitURLs splits DATABASE_READ_URL into its URLs, separated by spaces or commas; a part
// that is no URL continues the one before (the hosts of a multi-host URL).
func splitURLs(s string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if len(out) > 0 && !strings.Contains(part, "://") {
			out[len(out)-1] += "," + part
			continue
		}
		out = append(out, part)
	}
	return out
}
