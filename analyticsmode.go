package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/store"
)

// The analytics modes ANALYTICS asks for: auto (the default) takes TimescaleDB when the server
// can run it and plain PostgreSQL otherwise; the others insist.
const (
	analyticsAuto        = "auto"
	analyticsTimescaleDB = store.AnalyticsTimescaleDB
	analyticsPostgres    = store.AnalyticsPostgres
)

// analyticsVersion is the migration whose variant is the database's analytics mode.
const analyticsVersion = "0004_analytics.sql"

// migrationOptions decides, before migrating, which analytics variant the migrations may
// choose: from what ANALYTICS asks, what the server offers of TimescaleDB and what the
// database chose when it was first migrated (a mode is chosen once per database). Checking
// first matters: CREATE EXTENSION timescaledb on a server that has not preloaded it ends the
// session with FATAL, which would reach the user as a bare "conn closed".
func migrationOptions(ctx context.Context, pool *pgxpool.Pool, want string, log *slog.Logger) (db.Options, error) {
	tsdb, err := db.ExtensionStatus(ctx, pool, analyticsTimescaleDB)
	if err != nil {
		return db.Options{}, err
	}
	chosen, recorded, err := db.AppliedVariant(ctx, pool, analyticsVersion)
	if err != nil {
		return db.Options{}, err
	}
	opts, warning, err := decideAnalytics(want, tsdb, chosen, recorded)
	if warning != "" {
		log.Warn(warning)
	}
	return opts, err
}

// decideAnalytics is migrationOptions' decision. It returns the options, a line to log when
// auto falls back to plain PostgreSQL, or an error saying in one line what to set.
func decideAnalytics(want string, tsdb db.Extension, chosen string, recorded bool) (opts db.Options, warning string, err error) {
	plain := db.Options{Without: []string{analyticsTimescaleDB}}
	switch {
	case recorded && chosen == analyticsTimescaleDB && want == analyticsPostgres:
		return opts, "", fmt.Errorf("ANALYTICS=postgres, but this database's analytics run on TimescaleDB (a database's mode " +
			"is chosen when it is first migrated): use a new database for plain PostgreSQL, or ANALYTICS=auto")
	case recorded && chosen == analyticsTimescaleDB && !tsdb.Usable():
		return opts, "", fmt.Errorf("this database's analytics run on TimescaleDB, but %s", tsdb.Problem())
	case recorded && chosen != analyticsTimescaleDB && want == analyticsTimescaleDB:
		return opts, "", fmt.Errorf("ANALYTICS=timescaledb, but this database's analytics run on plain PostgreSQL (a database's " +
			"mode is chosen when it is first migrated): use a new database for TimescaleDB, or ANALYTICS=auto")
	case recorded:
		return opts, "", nil
	case want == analyticsPostgres:
		return plain, "", nil
	case !tsdb.Usable() && want == analyticsTimescaleDB:
		return opts, "", fmt.Errorf("ANALYTICS=timescaledb, but %s", tsdb.Problem())
	case !tsdb.Usable():
		return plain, fmt.Sprintf("analytics in plain PostgreSQL mode, as %s (the mode is chosen once, "+
			"at this database's first migration)", tsdb.Problem()), nil
	}
	return opts, "", nil
}
