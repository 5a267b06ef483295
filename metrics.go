package main

import (
	"context"
	"time"

	"github.com/homegoods/storefront/db/feed"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

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

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
