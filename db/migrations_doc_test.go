package db_test

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/homegoods/storefront/db"
)

// TestMigrationsSayWhatTheyReplace: a migration that redefines, drops, alters or renames a
// function, procedure, view or trigger that an earlier migration created says so in its
// header ("-- Replaces NNNN: name, ..."), and the earlier migration says by which one
// ("-- Replaced in NNNN: name, ..."), so that a reader of either file learns that the
// definition in front of them is not, or not only, the one that runs.
func TestMigrationsSayWhatTheyReplace(t *testing.T) {
	files := migrationFiles(t)
	for i, later := range files {
		for _, r := range replacements(later.text) {
			origin, ok := creator(files[:i], later, r)
			if !ok {
				continue // created in this file, or not a definition of the migrations
			}
			if !names(later.text, "-- Replaces "+origin.version, r) {
				t.Errorf("%s replaces %s of %s: its header says nothing of it (want a line %q naming it)",
					later.name, r, origin.name, "-- Replaces "+origin.version+": ...")
			}
			if !names(origin.text, "-- Replaced in "+later.version, r) {
				t.Errorf("%s: %s is replaced by %s, which it does not say (want a line %q naming it)",
					origin.name, r, later.name, "-- Replaced in "+later.version+": ...")
			}
		}
	}
}

type migrationFile struct {
	name, version, variant, text string
}

func migrationFiles(t *testing.T) []migrationFile {
	t.Helper()
	entries, err := fs.ReadDir(db.Migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	var out []migrationFile
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue // a shared template, rendered into the migrations that use it
		}
		text, err := db.SQL(db.Migrations, "migrations/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(strings.TrimSuffix(e.Name(), ".sql"), ".")
		f := migrationFile{name: e.Name(), version: e.Name()[:4], text: text}
		if len(parts) == 2 {
			f.variant = parts[1]
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b migrationFile) int { return strings.Compare(a.name, b.name) })
	return out
}

var (
	creates  = regexp.MustCompile(`(?i)\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|PROCEDURE|VIEW|TRIGGER)\s+(\w+)`)
	replaces = regexp.MustCompile(`(?i)\b(?:CREATE\s+OR\s+REPLACE|DROP|ALTER)\s+(?:FUNCTION|PROCEDURE|VIEW|TRIGGER)\s+(\w+)`)
)

// replacements are the objects text redefines, drops, alters or renames.
func replacements(text string) []string {
	var out []string
	for _, m := range replaces.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// creator is the first earlier migration, of later's variant or of every variant, that
// creates name.
func creator(earlier []migrationFile, later migrationFile, name string) (migrationFile, bool) {
	for _, f := range earlier {
		if f.variant != "" && f.variant != later.variant || f.version == later.version {
			continue
		}
		for _, m := range creates.FindAllStringSubmatch(f.text, -1) {
			if m[1] == name {
				return f, true
			}
		}
	}
	return migrationFile{}, false
}

// names tells whether a comment line of text starting with prefix names name.
func names(text, prefix, name string) bool {
	word := regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) && word.MatchString(line) {
			return true
		}
	}
	return false
}
