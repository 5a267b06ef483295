package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
)

// openReads opens a pool on each read replica (each as large as the primary's, with the same
// session settings) and returns the routing of reads over them; with no replica every read
// goes to primary.
func openReads(cfg config, primary *pgxpool.Pool, tracer pgx.QueryTracer, log *slog.Logger) (*db.Reads, func(), error) {
	var pools []*pgxpool.Pool
	closeAll := func() {
		for _, p := range pools {
			p.Close()
		}
	}
	for _, url := range cfg.DatabaseReadURLs {
		// Not db.Open: a replica down at start is no reason not to serve; it joins when it
		// answers the probes.
		p, err := db.New(url, func(pc *pgxpool.Config) {
			if !strings.Contains(url, "pool_max_conns") {
				pc.MaxConns = primary.Config().MaxConns
			}
			for k, v := range primary.Config().ConnConfig.RuntimeParams {
				if _, set := pc.ConnConfig.RuntimeParams[k]; !set {
					pc.ConnConfig.RuntimeParams[k] = v
				}
			}
			if tracer != nil {
				pc.ConnConfig.Tracer = tracer
			}
		})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("DATABASE_READ_URL %s: %w", maskURL(url), err)
		}
		pools = append(pools, p)
	}
	reads := db.NewReads(primary, pools, db.ReadOptions{MaxLag: cfg.ReplicaMaxLag, Log: log})
	if len(pools) > 0 {
		log.Info("replicas: stale-tolerant reads go to read replicas", "replicas", len(pools), "max_lag", cfg.ReplicaMaxLag)
	}
	return reads, closeAll, nil
}

// afterReplay makes c's handler wait until the read replicas have replayed what it is handed
// (db.Reads.AwaitReplay): the cache consumer invalidates values, and a fill that read a
// replica behind the change would otherwise cache the old value again until its TTL.
func afterReplay(reads *db.Reads, c feed.Consumer) feed.Consumer {
	handle := c.Handle
	c.Handle = func(ctx context.Context, events []model.OutboxEvent) error {
		if err := reads.AwaitReplay(ctx); err != nil {
			return err
		}
		return handle(ctx, events)
	}
	return c
}

// readYourWrites sends every read of a mutation, and of a merchandiser's operation, to the
// primary: a merchandiser reads what they just changed, and a mutation's answer shows its
// own change. Guests' and customers' queries read the replicas.
type readYourWrites struct{}

func (readYourWrites) ExtensionName() string { return "ReadYourWrites" }

func (readYourWrites) Validate(graphql.ExecutableSchema) error { return nil }

func (readYourWrites) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	op := graphql.GetOperationContext(ctx).Operation
	if (op != nil && op.Operation == ast.Mutation) || resolvers.PrincipalFrom(ctx).Role == model.RoleMerchandiser {
		ctx = db.Primary(ctx)
	}
	return next(ctx)
}

// registerReplicaMetrics exposes each replica's lag and whether it serves reads.
func registerReplicaMetrics(reg prometheus.Registerer, reads *db.Reads) {
	reg.MustRegister(replicaCollector{reads: reads,
		lag: prometheus.NewDesc("storefront_db_replica_lag_seconds",
			"How far a read replica was behind the primary at its last probe.", []string{"replica"}, nil),
		usable: prometheus.NewDesc("storefront_db_replica_usable",
			"1 while a read replica serves reads, 0 while it is skipped.", []string{"replica"}, nil),
	})
}

type replicaCollector struct {
	reads       *db.Reads
	lag, usable *prometheus.Desc
}

func (c replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.usable
}

func (c replicaCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range c.reads.Replicas() {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, r.Lag.Seconds(), r.Name)
		ch <- prometheus.MustNewConstMetric(c.usable, prometheus.GaugeValue, boolFloat(r.Usable), r.Name)
	}
}
