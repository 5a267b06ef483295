// Command storefront is the GraphQL storefront API server and its operating commands:
// serve (the default), migrate, seed and token.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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
		return migrate(ctx, cfg, log, args, stdout)
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
  migrate   apply the database migrations (-print FILE: print the SQL of one instead)
  seed      load a demo catalog: --products N --seed S [--if-empty] [--orders N [--facts-only]]
  reindex   rebuild the Elasticsearch index from PostgreSQL behind its alias (ELASTICSEARCH_URL)
  reconcile compare the Elasticsearch index with PostgreSQL and repair drift (ELASTICSEARCH_URL)
  token     print a token signed with JWT_SECRET: --role merchandiser|customer [--customer ID] [--ttl 1h]
  revoke    revoke a token by its id on every server sharing the Redis of REDIS_URL: revoke TOKEN_ID

configuration comes from the environment; see README.md.
`

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
