package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/elastic"
	"github.com/homegoods/storefront/search/indexer"
	pgsearch "github.com/homegoods/storefront/search/postgres"
	"github.com/homegoods/storefront/search/relevance"
	"github.com/homegoods/storefront/supervisor"
)

// searching is product search: the service resolvers call, the relevance controls, and,
// with ELASTICSEARCH_URL, the indexer that keeps the index in step with PostgreSQL.
type searching struct {
	service  *search.Service
	controls *relevance.Controls
	indexer  *indexer.Indexer // nil without Elasticsearch
	// onVisible empties the caches of search results on every instance (SEARCH_CACHE_TTL);
	// nil without them.
	onVisible func()
	postgres  *pgsearch.Engine
}

// searchMetrics are what search reports to /metrics.
type searchMetrics struct {
	answers *prometheus.CounterVec
	lag     *prometheus.HistogramVec
}

func newSearchMetrics(reg prometheus.Registerer) *searchMetrics {
	m := &searchMetrics{
		answers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "storefront_search_answers_total",
			Help: "Searches and suggestions answered, by engine; degraded: the fallback answered for a failed primary."},
			[]string{"backend", "degraded"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "storefront_search_sync_lag_seconds",
			Help:    "From the commit of a change to its document in the search index.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"kind"}),
	}
	reg.MustRegister(m.answers, m.lag)
	return m
}

// searchCacheSize is how many search results an instance keeps (SEARCH_CACHE_TTL).
const searchCacheSize = 1000

// newSearching builds search on PostgreSQL, with Elasticsearch in front when configured:
// searches on the requests' pool, the indexer on the pool of background work. client carries
// the calls to Elasticsearch. With SEARCH_CACHE_TTL, results
// are kept in a memo on bus that every catalog or controls change empties, on every instance.
func newSearching(cfg config, dbs *pools, metrics *searchMetrics, client *http.Client, bus *cache.Bus, log *slog.Logger) (*searching, error) {
	pool := dbs.requests
	facets := search.DefaultConfig()
	s := &searching{controls: relevance.NewControls(pool)}
	fallback := pgsearch.New(pool, facets, s.controls)
	if cfg.SearchCacheTTL > 0 {
		s.onVisible = func() {
			if err := bus.Announce(context.Background()); err != nil {
				log.Warn("search: could not announce a change to the caches of search results", "err", err)
			}
		}
	}
	s.postgres = fallback
	var primary search.Engine
	if cfg.ElasticsearchURL != "" {
		es, err := elastic.New(cfg.elasticConfig(facets, client))
		if err != nil {
			return nil, err
		}
		primary = es
		s.indexer = indexer.New(es, dbs.jobs, indexer.Options{Controls: s.controls, Log: log, OnVisible: s.onVisible,
			ObserveLag: func(kind string, lag time.Duration) { metrics.lag.WithLabelValues(kind).Observe(lag.Seconds()) }})
		if s.onVisible != nil {
			// Before the results cache empties: a result must not be computed again from
			// words the engine remembers as unknown from before the change.
			bus.OnCatalogChange(es.ForgetWords)
		}
		log.Info("search: elasticsearch, postgres as fallback", "url", maskURLs(cfg.ElasticsearchURL), "index", cfg.SearchIndex)
	} else {
		log.Info("search: postgres full-text (set ELASTICSEARCH_URL for elasticsearch)")
	}
	var results search.ResultCache
	if s.onVisible != nil {
		results = cache.NewMemo[*model.SearchResult](bus, searchCacheSize, cfg.SearchCacheTTL)
		s.controls.OnChange(s.onVisible)
	}
	s.service = search.NewService(primary, fallback, s.controls, facets, search.ServiceOptions{
		Timeout:    cfg.SearchTimeout,
		FlushEvery: cfg.SearchInsightsInterval,
		OnAnswer: func(backend string, degraded bool) {
			metrics.answers.WithLabelValues(backend, fmt.Sprint(degraded)).Inc()
		},
		Cache: results,
	}, log)
	return s, nil
}

// start runs search's background work under g: flushing insights and, with
// Elasticsearch, the change feed's consumer that keeps the index (it builds the index
// when there is none), the rebuilds that bring in changed synonyms and the periodic
// reconciler. Search is answered from PostgreSQL
// until the index exists, so an unreachable Elasticsearch delays the index, never the
// server.
func (s *searching) start(g *supervisor.Group, changes *feed.Feed, cfg config) {
	g.Go("search-insights", s.service.Run)
	if s.indexer == nil {
		return
	}
	g.Go("relay:"+indexer.DefaultConsumer, changes.Relay(s.indexer.Consumer()))
	g.Go("search-synonyms", s.indexer.RunSynonymUpdates)
	g.Go("search-reconcile", func(ctx context.Context) error {
		return s.indexer.RunReconciler(ctx, cfg.SearchReconcileInterval)
	})
}

// elasticConfig is where and how the Elasticsearch engine searches; client carries its
// requests.
func (c config) elasticConfig(facets search.Config, client *http.Client) elastic.Config {
	return elastic.Config{URL: c.ElasticsearchURL, Index: c.SearchIndex, Replicas: c.SearchReplicas, APIKey: c.ElasticsearchAPIKey,
		Facets: facets, HTTPClient: client}
}

// searchTransport carries the calls to the search cluster: Go's default transport, which
// trusts only the authority of ELASTICSEARCH_CA_CERT when that is set.
func (c config) searchTransport() (http.RoundTripper, error) {
	if c.ElasticsearchCACert == "" {
		return http.DefaultTransport, nil
	}
	roots, err := trustedRoots(c.ElasticsearchCACert)
	if err != nil {
		return nil, fmt.Errorf("ELASTICSEARCH_CA_CERT: %w", err)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return t, nil
}

// newIndexer is the indexer of the reindex and reconcile commands.
func newIndexer(cfg config, pool *pgxpool.Pool, log *slog.Logger) (*indexer.Indexer, error) {
	if cfg.ElasticsearchURL == "" {
		return nil, fmt.Errorf("ELASTICSEARCH_URL is not set: the PostgreSQL search needs no index")
	}
	facets := search.DefaultConfig()
	transport, err := cfg.searchTransport()
	if err != nil {
		return nil, err
	}
	es, err := elastic.New(cfg.elasticConfig(facets, &http.Client{Transport: transport}))
	if err != nil {
		return nil, err
	}
	return indexer.New(es, pool, indexer.Options{Controls: relevance.NewControls(pool), Log: log}), nil
}
