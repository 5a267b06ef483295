package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/dbtest"
)

// What a database gets, or why it is refused, for each ANALYTICS and state of the server:
// TimescaleDB missing, installed but not preloaded (the FATAL that ended migrations with
// "conn closed"), or usable; in a database never migrated or migrated in either mode.
func TestDecideAnalytics(t *testing.T) {
	missing := db.Extension{Name: "timescaledb"}
	unloaded := db.Extension{Name: "timescaledb", Installed: true}
	usable := db.Extension{Name: "timescaledb", Installed: true, Preloaded: true}
	const plain, none, anyVariant = "plain", "", "any"
	for _, c := range []struct {
		want    string
		tsdb    db.Extension
		chosen  string // "" for a database never migrated
		options string // plain: TimescaleDB excluded; any: nothing excluded
		warning string // in the line logged
		refusal string // in the error
	}{
		{"auto", usable, none, anyVariant, "", ""},
		{"auto", missing, none, plain, "does not offer the timescaledb extension", ""},
		{"auto", unloaded, none, plain, "set shared_preload_libraries = 'timescaledb'", ""},
		{"postgres", usable, none, plain, "", ""},
		{"timescaledb", usable, none, anyVariant, "", ""},
		{"timescaledb", unloaded, none, "", "", "ANALYTICS=timescaledb, but the timescaledb extension is installed but not preloaded: set shared_preload_libraries"},
		{"timescaledb", missing, none, "", "", "not installed"},
		{"auto", usable, "timescaledb", anyVariant, "", ""},
		{"auto", unloaded, "timescaledb", "", "", "run on TimescaleDB, but the timescaledb extension is installed but not preloaded: set shared_preload_libraries"},
		{"postgres", usable, "timescaledb", "", "", "use a new database for plain PostgreSQL"},
		{"auto", usable, "postgres", anyVariant, "", ""},
		{"auto", unloaded, "postgres", anyVariant, "", ""},
		{"timescaledb", usable, "postgres", "", "", "use a new database for TimescaleDB"},
	} {
		opts, warning, err := decideAnalytics(c.want, c.tsdb, c.chosen, c.chosen != none)
		name := c.want + "/" + c.tsdb.Problem() + "/" + c.chosen
		switch {
		case c.refusal != "":
			if err == nil || !strings.Contains(err.Error(), c.refusal) {
				t.Errorf("%s: error %v; want one saying %q", name, err, c.refusal)
			}
		case err != nil:
			t.Errorf("%s: %v; want no error", name, err)
		case (c.options == plain) != slices.Equal(opts.Without, []string{"timescaledb"}):
			t.Errorf("%s: options %+v; want %s", name, opts, c.options)
		}
		if (c.warning == "") != (warning == "") || !strings.Contains(warning, c.warning) || strings.Contains(warning, "\n") {
			t.Errorf("%s: warning %q; want one line saying %q", name, warning, c.warning)
		}
	}
}

// ANALYTICS=postgres gives a new database plain analytics on a server that preloads
// TimescaleDB; /readyz says which mode serves; asking for the other mode later is refused
// with what to do.
func TestAnalyticsModeChosenOnce(t *testing.T) {
	env := newTestEnv(t)
	env["DATABASE_URL"] = dbtest.NewEmptyURL(t)
	env["ANALYTICS"] = "postgres"
	runCommand(t, env, "migrate")
	base, _ := startServer(t, env)
	if code, body, _ := get(t, base+"/readyz"); code != 200 || body != "ready\nanalytics: postgres\n" {
		t.Errorf("/readyz: %d %q; want the plain mode", code, body)
	}
	env["ANALYTICS"] = "timescaledb"
	err := run(context.Background(), []string{"migrate"}, env.get, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "use a new database for TimescaleDB") {
		t.Errorf("ANALYTICS=timescaledb on a plain database: %v; want a refusal saying what to do", err)
	}
}

// `storefront migrate -print FILE` prints what a migration file runs, rendered, without a
// database: the levels its templates name, and no template action left.
func TestMigratePrintsRenderedSQL(t *testing.T) {
	out := runCommand(t, testEnv{}, "migrate", "-print", "0010_analytics_quarter_hours.timescaledb.sql")
	for _, level := range []string{"sales_15min", "sales_15min_totals", "sales_15min_by_category", "sales_15min_by_brand"} {
		if !strings.Contains(out, "CREATE MATERIALIZED VIEW "+level+"\n") {
			t.Errorf("no continuous aggregate %s in:\n%s", level, out)
		}
	}
	if strings.Contains(out, "{{") {
		t.Errorf("template actions left in:\n%s", out)
	}
}
