package db_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/homegoods/storefront/db"
)

// applied are the statements each migration file renders to (a hash of them without comments
// and with whitespace collapsed), as databases ran them: 0004 and 0006's plain-PostgreSQL
// variants were rewritten to statements of the same effect when the shared templates came in
// (pg_dump --schema-only of databases migrated before and after was the same). Neither an
// edit of a file but for its comments nor a change of a shared template may change them; a
// new migration adds its line.
var applied = map[string]string{
	"0001_catalog.sql":                             "6d306d85469a6776",
	"0002_outbox_consumers.sql":                    "8048c2a6c4848212",
	"0003_commerce.sql":                            "0331dde92f890122",
	"0004_analytics.postgres.sql":                  "5a28b07021240008",
	"0004_analytics.timescaledb.sql":               "e1acba4eeddd9814",
	"0005_search.sql":                              "770d50e6bc21ed9a",
	"0006_analytics_rollups.postgres.sql":          "50cd57077393d25e",
	"0006_analytics_rollups.timescaledb.sql":       "0ff44eb37a1eb34b",
	"0007_change_feed.sql":                         "d6774d20c5d93806",
	"0008_order_line_costs.sql":                    "f82866d74e5cae3d",
	"0009_analytics_partitions.postgres.sql":       "5f4f9f38eb265789",
	"0009_analytics_partitions.timescaledb.sql":    "17db4fd369edb924",
	"0010_analytics_quarter_hours.postgres.sql":    "2a42e968266ffd40",
	"0010_analytics_quarter_hours.timescaledb.sql": "aaa4e67f4ccaa488",
	"0011_checkout_limits.sql":                     "01abbe4c5d6f867e",
	"0012_customers.sql":                           "7cbec1b4225d6d56",
}

// TestMigrationsRenderAsApplied keeps the rendered migrations as databases applied them.
func TestMigrationsRenderAsApplied(t *testing.T) {
	names, err := fs.Glob(db.Migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		sql, err := db.SQL(db.Migrations, name)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimPrefix(name, "migrations/")
		if got, want := statementsHash(sql), applied[base]; got != want {
			t.Errorf("%s renders to other statements than it did when introduced (hash %s, want %q): "+
				"an applied migration must not change; a new one adds its hash to applied", base, got, want)
		}
	}
}

var (
	sqlComment = regexp.MustCompile(`--[^\n]*`)
	whitespace = regexp.MustCompile(`\s+`)
)

func statementsHash(sql string) string {
	text := strings.TrimSpace(whitespace.ReplaceAllString(sqlComment.ReplaceAllString(sql, ""), " "))
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:8])
}
