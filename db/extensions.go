package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// preloadedExtensions are the extensions whose library must be in shared_preload_libraries
// before CREATE EXTENSION: without it TimescaleDB ends the session with FATAL ("extension
// timescaledb must be preloaded"), which no savepoint catches, rather than failing the
// statement.
var preloadedExtensions = map[string]bool{"timescaledb": true}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Extension is what a server offers of an extension.
type Extension struct {
	Name      string
	Installed bool   // the server offers it (pg_available_extensions)
	Preloaded bool   // its library is in shared_preload_libraries
	Version   string // its version in this database; "" when not created here
}

// Usable reports whether migrations may create the extension.
func (e Extension) Usable() bool {
	return e.Installed && (e.Preloaded || !preloadedExtensions[e.Name])
}

// Problem says, in one line, why the extension is not usable, and what to set; "" when it is.
func (e Extension) Problem() string {
	switch {
	case !e.Installed:
		return fmt.Sprintf("the PostgreSQL server does not offer the %s extension (not installed)", e.Name)
	case !e.Usable():
		return fmt.Sprintf("the %[1]s extension is installed but not preloaded: set shared_preload_libraries = '%[1]s' "+
			"in postgresql.conf and restart PostgreSQL", e.Name)
	}
	return ""
}

// shared_preload_libraries is a comma-separated list whose items may be quoted or be paths.
const extensionSQL = `
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1),
       current_setting('shared_preload_libraries') ~ ('(^|[\s,"/])' || $1 || '($|[\s,"])'),
       coalesce((SELECT extversion FROM pg_extension WHERE extname = $1), '')`

// ExtensionStatus reports what the server offers of the extension name.
func ExtensionStatus(ctx context.Context, q querier, name string) (Extension, error) {
	e := Extension{Name: name}
	if err := q.QueryRow(ctx, extensionSQL, name).Scan(&e.Installed, &e.Preloaded, &e.Version); err != nil {
		return e, fmt.Errorf("extension %s: %w", name, err)
	}
	return e, nil
}

func extensionUsable(ctx context.Context, q querier, name string) (bool, error) {
	e, err := ExtensionStatus(ctx, q, name)
	return e.Usable(), err
}
