package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
	"github.com/homegoods/storefront/supervisor"
)

// rankingStore is what the server does with rankings: keep them from the feed, answer
// resolvers.
type rankingStore interface {
	cache.Rankings
	resolvers.Rankings
}

// sessionStore is what the server does with sessions: visitors' and those behind customers'
// access tokens.
type sessionStore interface {
	resolvers.Sessions
	resolvers.CustomerSessions
}

// caching is everything the server keeps in Redis, or in process memory without it.
type caching struct {
	redis    redis.UniversalClient // nil in memory mode
	breaker  *cache.Breaker        // nil in memory mode
	bus      *cache.Bus
	alerts   *cache.Alerts
	catalog  *cache.Catalog // nil with CACHE=off
	sessions sessionStore
	rankings rankingStore
	apq      graphql.Cache[string] // nil unless PERSISTED_QUERIES=automatic
	// allowlist runs registered operations only, when PERSISTED_QUERIES=allowlist.
	allowlist *resolvers.Allowlist
	// operationNames are the names of the operations registered from OPERATIONS_DIR.
	operationNames []string
	limiter        cache.RateLimiter // nil when rate limits are off
	// accountLimits slow the guessing of passwords and order numbers.
	accountLimits resolvers.AccountLimits
	// revocations are the revoked tokens; with Redis, refreshRevocations keeps this
	// instance's copy of the list current.
	revocations        resolvers.Revocations
	refreshRevocations func(ctx context.Context) error
}

// The budgets of the account limits: per account (the email tried), 10 sign-in attempts
// at once and then one a minute; per client, 30 at once and then 10 a minute for sign-ins,
// sign-ups, reset requests and guest order lookups together.
var (
	signInPerAccount = cache.RateLimit{PerSecond: 1, Burst: 10, Period: time.Minute}
	signInPerClient  = cache.RateLimit{PerSecond: 10, Burst: 30, Period: time.Minute}
)

// newAccountLimits returns the account limits, kept where the other budgets are.
func newAccountLimits(newLimiter func(cache.RateLimit) (cache.RateLimiter, error)) (resolvers.AccountLimits, error) {
	perAccount, err := newLimiter(signInPerAccount)
	if err != nil {
		return resolvers.AccountLimits{}, err
	}
	perClient, err := newLimiter(signInPerClient)
	return resolvers.AccountLimits{PerAccount: perAccount, PerClient: perClient}, err
}

// newCaching builds the Redis-backed services when REDIS_URL or REDIS_ADDRS is set and the
// in-process ones otherwise.
func newCaching(cfg config, st *store.Store, log *slog.Logger) (*caching, error) {
	c := &caching{}
	limit := cache.RateLimit{PerSecond: cfg.RateLimitPerSecond, Burst: cfg.RateLimitBurst}
	opts, err := cfg.redisOptions()
	if err != nil {
		return nil, err
	}
	if opts != nil {
		epoch := &cache.ServerEpoch{}
		opts.OnConnect = epoch.OnConnect
		c.redis = redis.NewUniversalClient(opts)
		c.breaker = cache.NewBreaker(cache.NewRedisBackend(c.redis, cfg.RedisPrefix, epoch), cache.BreakerOptions{}, log)
		c.bus = cache.NewBus(c.breaker, log)
		c.sessions = cache.NewRedisSessions(c.redis, cfg.RedisPrefix, cache.SessionConfig{})
		c.rankings = cache.NewRedisRankings(c.redis, cfg.RedisPrefix, cache.RankingConfig{})
		c.apq = cache.NewRedisAPQCache(c.redis, cfg.RedisPrefix, cache.DefaultAPQTTL, log)
		revocations := cache.NewRedisRevocations(c.redis, cfg.RedisPrefix, log)
		c.revocations, c.refreshRevocations = revocations, revocations.Run
		if limit.PerSecond > 0 {
			c.limiter, err = cache.NewRedisRateLimiter(c.redis, cfg.RedisPrefix, limit)
		}
		if err == nil {
			c.accountLimits, err = newAccountLimits(func(l cache.RateLimit) (cache.RateLimiter, error) {
				return cache.NewRedisRateLimiter(c.redis, cfg.RedisPrefix, l)
			})
		}
		log.Info("cache: redis", "addrs", opts.Addrs, "cluster", opts.IsClusterMode || len(opts.Addrs) > 1 && opts.MasterName == "")
	} else {
		c.bus = cache.NewBus(cache.NewMemoryBackend(cfg.CacheMemoryEntries), log)
		c.sessions = cache.NewMemorySessions(cache.SessionConfig{})
		c.rankings = cache.NewMemoryRankings(cache.RankingConfig{})
		c.apq = resolvers.NewMemoryAPQCache(1000)
		c.revocations = cache.NewMemoryRevocations()
		if limit.PerSecond > 0 {
			c.limiter, err = cache.NewMemoryRateLimiter(limit)
		}
		if err == nil {
			c.accountLimits, err = newAccountLimits(func(l cache.RateLimit) (cache.RateLimiter, error) {
				return cache.NewMemoryRateLimiter(l)
			})
		}
		log.Warn("cache: REDIS_URL is unset: in-process cache, sessions and pub/sub, for a single instance only")
	}
	if err != nil {
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	c.alerts = cache.NewAlerts(c.bus.Backend(), log)
	if cfg.Cache {
		c.catalog = cache.NewCatalog(c.bus, st, cache.ReadThroughOptions{TTL: cfg.CacheTTL, L1Size: cfg.CacheL1Size, L1TTL: cfg.CacheL1TTL})
	}
	switch cfg.PersistedQueries {
	case "off":
		c.apq = nil
	case "allowlist":
		c.apq = nil
		opts := resolvers.AllowlistOptions{AllowAny: isMerchandiser, Log: log}
		if c.redis != nil {
			c.allowlist = resolvers.NewSharedAllowlist(cache.NewRedisOperations(c.redis, cfg.RedisPrefix), opts)
		} else {
			c.allowlist = resolvers.NewMemoryAllowlist(opts)
		}
	}
	return c, nil
}

// isMerchandiser lets merchandisers run any operation in allowlist mode: the playground is
// theirs.
func isMerchandiser(ctx context.Context) bool {
	return resolvers.PrincipalFrom(ctx).Role == model.RoleMerchandiser
}

// registerOperations loads the allowlist and registers the operations of dir.
func (c *caching) registerOperations(ctx context.Context, dir string, log *slog.Logger) error {
	if c.allowlist == nil {
		return nil
	}
	names, err := c.allowlist.LoadAndRegisterDir(ctx, dir, log)
	c.operationNames = names
	return err
}

// start runs the cache's background work under g: the invalidation bus, the inventory
// alerts, and the change feed's consumers that keep the cache, the alerts and the rankings.
// The cache's consumer waits for the read replicas of reads to replay each change.
func (c *caching) start(g *supervisor.Group, changes *feed.Feed, st *store.Store, reads *db.Reads, log *slog.Logger) {
	g.Go("cache-bus", c.bus.Run)
	g.Go("alerts", c.alerts.Run)
	if c.refreshRevocations != nil {
		g.Go("revoked-tokens", c.refreshRevocations)
	}
	consumers := []feed.Consumer{c.alerts.Consumer(), cache.NewRankingsConsumer(c.rankings, st, cache.RankingConfig{}, log)}
	if c.catalog != nil {
		consumers = append(consumers, afterReplay(reads, c.catalog.Consumer()))
	}
	for _, consumer := range consumers {
		g.Go("relay:"+consumer.Name, changes.Relay(consumer))
	}
}

func (c *caching) close() {
	if c.redis != nil {
		_ = c.redis.Close()
	}
}

// redisOptions turns REDIS_URL (one node) or REDIS_ADDRS (a cluster, or Sentinel with
// REDIS_MASTER_NAME) into client options; nil when neither is set. Calls time out quickly
// and do not retry: the breaker and the database fallback handle a Redis in trouble.
func (c config) redisOptions() (*redis.UniversalOptions, error) {
	var opts redis.UniversalOptions
	switch {
	case c.RedisURL != "":
		u, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		opts = redis.UniversalOptions{Addrs: []string{u.Addr}, Username: u.Username, Password: u.Password, DB: u.DB, TLSConfig: u.TLSConfig}
	case c.RedisAddrs != "":
		opts = redis.UniversalOptions{Addrs: strings.Split(c.RedisAddrs, ","), MasterName: c.RedisMasterName,
			Username: c.RedisUsername, Password: c.RedisPassword, SentinelPassword: c.RedisSentinelPassword}
		opts.IsClusterMode = c.RedisMasterName == "" && len(opts.Addrs) > 1
		if c.RedisTLS {
			opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return nil, nil
	}
	if c.RedisCACert != "" {
		if opts.TLSConfig == nil {
			return nil, errors.New("REDIS_CA_CERT is set but Redis is not reached over TLS: use rediss:// in REDIS_URL, or REDIS_TLS=true")
		}
		roots, err := trustedRoots(c.RedisCACert)
		if err != nil {
			return nil, fmt.Errorf("REDIS_CA_CERT: %w", err)
		}
		opts.TLSConfig.RootCAs = roots
	}
	// Without ContextTimeoutEnabled go-redis ignores context deadlines on its sockets, and a
	// hung Redis would hold a request for ReadTimeout instead of the breaker's 100 ms.
	opts.ContextTimeoutEnabled = true
	opts.DialTimeout = 200 * time.Millisecond
	opts.ReadTimeout = 200 * time.Millisecond
	opts.WriteTimeout = 200 * time.Millisecond
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	opts.PoolSize = 32
	if opts.MasterName != "" {
		// go-redis moves its connections to a promoted master when Sentinel announces it or
		// when it dials; an instance that missed the announcement would otherwise keep its
		// pooled connections to the demoted master, reading stale values and refused every
		// write. Renewed connections ask the Sentinels where the master is.
		opts.ConnMaxLifetime = sentinelConnLifetime
	}
	return &opts, nil
}

// registerCacheMetrics exposes the cache's counters and the Redis circuit breaker's state.
func registerCacheMetrics(reg prometheus.Registerer, c *caching) {
	if c.breaker != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "storefront_redis_breaker_open",
				Help: "1 while the Redis circuit breaker is open or probing, 0 when closed."},
				func() float64 { return boolFloat(c.breaker.State() != cache.BreakerClosed) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "storefront_redis_breaker_opens_total",
				Help: "Times the Redis circuit breaker opened."}, func() float64 { return float64(c.breaker.Opens()) }),
		)
	}
	if c.catalog == nil {
		return
	}
	counter := func(name, help string, get func(cache.ReadThroughStats) uint64) {
		desc := prometheus.NewDesc("storefront_cache_"+name+"_total", help, []string{"keyspace"}, nil)
		reg.MustRegister(cacheCollector{desc: desc, stats: c.catalog.Stats, get: get})
	}
	counter("l1_hits", "Keys answered by the in-process tier.", func(s cache.ReadThroughStats) uint64 { return s.L1Hits })
	counter("hits", "Keys answered by Redis (or the memory backend).", func(s cache.ReadThroughStats) uint64 { return s.Hits })
	counter("misses", "Keys the cache did not have.", func(s cache.ReadThroughStats) uint64 { return s.Misses })
	counter("loads", "Database loads made by the cache.", func(s cache.ReadThroughStats) uint64 { return s.Loads })
	counter("round_trips", "Backend round trips, a pipeline counting once.", func(s cache.ReadThroughStats) uint64 { return s.RoundTrips })
	counter("fallbacks", "Loads that went to the database because the backend failed.", func(s cache.ReadThroughStats) uint64 { return s.Fallbacks })
}

// cacheCollector reads one counter of every keyspace when scraped.
type cacheCollector struct {
	desc  *prometheus.Desc
	stats func() map[string]cache.ReadThroughStats
	get   func(cache.ReadThroughStats) uint64
}

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for keyspace, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.get(s)), keyspace)
	}
}

// sentinelConnLifetime bounds how long a client behind Sentinel may go on using the old
// master after a failover it did not hear of.
const sentinelConnLifetime = 2 * time.Second

// trustedRoots reads the PEM file of the authorities that signed a service's certificate when
// no public authority did (a managed service's own, or the private one of the fleet tests):
// only they are trusted for that service, as libpq's sslrootcert does for PostgreSQL.
func trustedRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return roots, nil
}
