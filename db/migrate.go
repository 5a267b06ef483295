package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations holds the schema migrations, applied in file name order.
//
// A migration is either one file, NNNN_name.sql, or a set of variants of one version,
// NNNN_name.VARIANT.sql, of which exactly one is applied: the variant named after an
// extension that the server offers (pg_available_extensions) and that can be created, else
// the variant "postgres", the plain-PostgreSQL fallback every set must have. Either way the
// version recorded in schema_migrations is NNNN_name.sql, with the variant applied in its
// variant column, so that a database never gets two variants of one version and the choice,
// once made, is kept. It is kept across versions too: a later version with a variant for the
// same extension follows the choice recorded for the latest earlier one (a version that builds
// on 0004_analytics's TimescaleDB relations must not take the plain variant, nor the reverse,
// whatever the server offers now).
//
// The files are rendered before they run (see SQL), with the shared templates of
// migrations/*.tmpl.
//
//go:embed migrations/*.sql migrations/*.tmpl
var Migrations embed.FS

// FallbackVariant is the variant applied when the server offers none of a version's
// extension variants.
const FallbackVariant = "postgres"

const createMigrationsTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS variant text`

// Migration is one version of the schema and its files: one, or one per variant.
type Migration struct {
	Version  string            // "0004_analytics.sql"
	Variants map[string]string // variant ("" for a plain migration) -> file path in Migrations
}

// Versions lists the embedded migrations in the order they are applied.
func Versions() ([]Migration, error) {
	return versions(Migrations)
}

func versions(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	byVersion := map[string]*Migration{}
	var out []*Migration
	for _, name := range names {
		version, variant := splitVariant(path.Base(name))
		m := byVersion[version]
		if m == nil {
			m = &Migration{Version: version, Variants: map[string]string{}}
			byVersion[version] = m
			out = append(out, m)
		}
		m.Variants[variant] = name
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	list := make([]Migration, len(out))
	for i, m := range out {
		if _, plain := m.Variants[""]; plain && len(m.Variants) > 1 {
			return nil, fmt.Errorf("migration %s exists both plain and with variants", m.Version)
		}
		if _, plain := m.Variants[""]; !plain {
			if _, ok := m.Variants[FallbackVariant]; !ok {
				return nil, fmt.Errorf("migration %s has variants but no %q fallback", m.Version, FallbackVariant)
			}
		}
		list[i] = *m
	}
	return list, nil
}

// splitVariant reads "0004_analytics.timescaledb.sql" as ("0004_analytics.sql", "timescaledb")
// and "0001_catalog.sql" as ("0001_catalog.sql", "").
func splitVariant(base string) (version, variant string) {
	stem := strings.TrimSuffix(base, ".sql")
	if i := strings.LastIndexByte(stem, '.'); i >= 0 {
		return stem[:i] + ".sql", stem[i+1:]
	}
	return base, ""
}

// Migrate applies the embedded migrations that the database has not recorded yet, in file name
// order, each in its own transaction, under a session advisory lock. It returns the names of
// the migrations it applied: a variant's as "NNNN_name.sql (variant)".
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	return MigrateFS(ctx, pool, Migrations)
}

// MigrateFS is Migrate with the migrations/*.sql files of fsys.
func MigrateFS(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) ([]string, error) {
	return MigrateWith(ctx, pool, fsys, Options{})
}

// Options tune a migration run.
type Options struct {
	// Without lists extension variants not to choose, as if the server did not offer their
	// extension (ANALYTICS=postgres: "timescaledb"). A version whose extension was chosen for
	// an earlier version still follows that choice.
	Without []string
}

// MigrateWith is MigrateFS with options.
func MigrateWith(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, opts Options) ([]string, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationKey); err != nil {
		return nil, fmt.Errorf("take migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationKey) //nolint:errcheck // the session ends the lock anyway

	if _, err := conn.Exec(ctx, createMigrationsTable); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	migrations, err := versions(fsys)
	if err != nil {
		return nil, err
	}
	var applied []string
	for i, m := range migrations {
		variant, err := applyOne(ctx, conn.Conn(), fsys, m, migrations[:i], opts)
		if err != nil {
			return applied, err
		}
		switch {
		case variant == nil:
		case *variant == "":
			applied = append(applied, m.Version)
		default:
			applied = append(applied, fmt.Sprintf("%s (%s)", m.Version, *variant))
		}
	}
	return applied, nil
}

// applyOne runs one migration and records it in the same transaction, unless it is recorded
// already. It returns the variant it applied ("" for a plain migration), or nil when it
// applied nothing. earlier are the versions before m.
func applyOne(ctx context.Context, conn *pgx.Conn, fsys fs.FS, m Migration, earlier []Migration, opts Options) (*string, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit

	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&exists); err != nil {
		return nil, err
	}
	if exists {
		return nil, nil
	}
	variant := ""
	if _, plain := m.Variants[""]; !plain {
		if variant, err = chooseVariant(ctx, tx, m, earlier, opts); err != nil {
			return nil, fmt.Errorf("migration %s: %w", m.Version, err)
		}
	}
	sql, err := SQL(fsys, m.Variants[variant])
	if err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		return nil, fmt.Errorf("migration %s: %w", path.Base(m.Variants[variant]), err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, variant) VALUES ($1, nullif($2, ''))`, m.Version, variant); err != nil {
		return nil, err
	}
	return &variant, tx.Commit(ctx)
}

// chooseVariant picks the first variant, by name, whose extension was chosen for the latest
// earlier version offering it, or, when no earlier version offered it, which opts allow and
// whose extension the server offers, has preloaded if it must (see Preloaded) and can create
// in this transaction; else the fallback. The extension is created in a savepoint, so that a
// role without the right to create it falls back cleanly.
func chooseVariant(ctx context.Context, tx pgx.Tx, m Migration, earlier []Migration, opts Options) (string, error) {
	var names []string
	for v := range m.Variants {
		if v != FallbackVariant {
			names = append(names, v)
		}
	}
	sort.Strings(names)
	for _, ext := range names {
		recorded, err := earlierChoice(ctx, tx, ext, earlier)
		if err != nil {
			return "", err
		}
		if recorded != nil {
			if *recorded == ext {
				return ext, nil
			}
			continue
		}
		if slices.Contains(opts.Without, ext) {
			continue
		}
		usable, err := extensionUsable(ctx, tx, ext)
		if err != nil {
			return "", err
		}
		if !usable {
			continue
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			return "", err
		}
		if _, err := sp.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS `+pgx.Identifier{ext}.Sanitize()); err != nil {
			if rbErr := sp.Rollback(ctx); rbErr != nil {
				return "", rbErr
			}
			continue
		}
		if err := sp.Commit(ctx); err != nil {
			return "", err
		}
		return ext, nil
	}
	return FallbackVariant, nil
}

// earlierChoice returns the variant recorded for the latest of the earlier versions that
// have a variant for ext, or nil when none of them is recorded.
func earlierChoice(ctx context.Context, tx pgx.Tx, ext string, earlier []Migration) (*string, error) {
	var versions []string
	for _, m := range earlier {
		if _, ok := m.Variants[ext]; ok {
			versions = append(versions, m.Version)
		}
	}
	if len(versions) == 0 {
		return nil, nil
	}
	var variant *string
	err := tx.QueryRow(ctx, `SELECT coalesce(variant, '') FROM schema_migrations WHERE version = ANY ($1)
	                         ORDER BY version DESC LIMIT 1`, versions).Scan(&variant)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return variant, err
}

// AppliedVariant returns the variant recorded for version ("" for a plain migration), and
// whether version is recorded at all (not in a database never migrated).
func AppliedVariant(ctx context.Context, pool *pgxpool.Pool, version string) (string, bool, error) {
	var variant *string
	err := pool.QueryRow(ctx, `SELECT variant FROM schema_migrations WHERE version = $1`, version).Scan(&variant)
	var pgErr *pgconn.PgError
	if errors.Is(err, pgx.ErrNoRows) || errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return "", false, nil
	}
	if err != nil || variant == nil {
		return "", err == nil, err
	}
	return *variant, true, nil
}
