// Package store is the PostgreSQL data access of the storefront. Every method that changes
// data owns its transaction and writes its outbox rows in it.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/semaphore"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
)

// Store reads and writes the catalog in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	// orderHold is how long an unpaid order keeps its stock reserved.
	orderHold time.Duration
	limits    CheckoutLimits
	// writers, when set, bounds the transactions open at once (see WithWriters).
	writers *semaphore.Weighted
	// reads, when set, sends the reads that may be slightly stale to read replicas.
	reads *db.Reads
}

// Option configures a Store.
type Option func(*Store)

// New returns a Store on pool.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, orderHold: DefaultOrderHold}
	for _, o := range opts {
		o(s)
	}
	return s
}

// constraintErrors maps constraint names to the client error they stand for, so that the
// database stays the last line of defence and its refusals still read well.
var constraintErrors = map[string]*model.Error{
	"products_sku_key":                    {Code: model.CodeConflict, Message: "a product with this sku exists", Argument: "input.sku"},
	"products_slug_key":                   {Code: model.CodeConflict, Message: "a product with this slug exists", Argument: "input.slug"},
	"products_category_id_fkey":           {Code: model.CodeBadUserInput, Message: "unknown category", Argument: "input.categoryId"},
	"products_brand_id_fkey":              {Code: model.CodeBadUserInput, Message: "unknown brand", Argument: "input.brandId"},
	"products_price_cents_check":          {Code: model.CodeBadUserInput, Message: "price must not be negative", Argument: "input.price"},
	"products_cost_cents_check":           {Code: model.CodeBadUserInput, Message: "cost must not be negative", Argument: "input.cost"},
	"products_sku_check":                  {Code: model.CodeBadUserInput, Message: "sku may hold letters, digits, '.', '_' and '-' only", Argument: "input.sku"},
	"products_slug_check":                 {Code: model.CodeBadUserInput, Message: "slug may hold lowercase letters, digits and single dashes only", Argument: "input.slug"},
	"categories_slug_key":                 {Code: model.CodeConflict, Message: "a category with this slug exists", Argument: "input.slug"},
	"categories_parent_id_fkey":           {Code: model.CodeBadUserInput, Message: "unknown parent category", Argument: "input.parentId"},
	"categories_slug_check":               {Code: model.CodeBadUserInput, Message: "slug may hold lowercase letters, digits and single dashes only", Argument: "input.slug"},
	"brands_slug_key":                     {Code: model.CodeConflict, Message: "a brand with this slug exists", Argument: "input.slug"},
	"brands_slug_check":                   {Code: model.CodeBadUserInput, Message: "slug may hold lowercase letters, digits and single dashes only", Argument: "input.slug"},
	"inventory_quantity_check":            {Code: model.CodeBadUserInput, Message: "stock must not go negative"},
	"inventory_check":                     {Code: model.CodeOutOfStock, Message: "not enough stock"},
	"inventory_reserved_quantity_check":   {Code: model.CodeBadUserInput, Message: "reservations must not go negative"},
	"inventory_low_stock_threshold_check": {Code: model.CodeBadUserInput, Message: "the low-stock threshold must not be negative", Argument: "threshold"},
	"inventory_product_id_fkey":           {Code: model.CodeNotFound, Message: "product not found"},
	"inventory_warehouse_id_fkey":         {Code: model.CodeNotFound, Message: "warehouse not found"},
	"customers_email_key":                 {Code: model.CodeConflict, Message: "this email cannot be registered: sign in, or reset the password", Argument: "input.email"},
	"customers_email_check":               {Code: model.CodeBadUserInput, Message: "not an email address of at most 254 characters", Argument: "input.email"},
	"customers_name_check":                {Code: model.CodeBadUserInput, Message: "a name has 1 to 200 characters", Argument: "input.name"},
	"cart_lines_quantity_check":           {Code: model.CodeBadUserInput, Message: "a cart holds 1 to 999 of a product"},
}

// translate turns a constraint violation into its client error and wraps anything else.
func translate(err error, action string) error {
	if err == nil {
		return nil
	}
	var me *model.Error
	if errors.As(err, &me) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if e, ok := constraintErrors[pgErr.ConstraintName]; ok {
			return fmt.Errorf("%s: %w", action, &model.Error{Code: e.Code, Message: e.Message, Argument: e.Argument})
		}
	}
	return fmt.Errorf("%s: %w", action, err)
}

// WithReads sends the reads that may be slightly stale (the catalog, listings, availability,
// analytics) where reads says, the primary included; carts, orders, checkout and every
// write stay on the primary.
func WithReads(reads *db.Reads) Option {
	return func(s *Store) { s.reads = reads }
}

// read returns where a read that may be slightly stale runs.
func (s *Store) read(ctx context.Context) querier {
	if s.reads == nil {
		return s.pool
	}
	return s.reads.For(ctx)
}

// querier is what a pool and a transaction share, so that helpers serve both.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// WithWriters lets at most n transactions run at once; the others wait for a slot, holding
// no connection, as long as their context allows (the request's deadline: then clients see
// UNAVAILABLE). Transactions take row locks and may wait for them: without a bound, a lock
// held elsewhere would gather every connection of the pool behind it, and reads, which take
// no lock, would wait for a connection too.
func WithWriters(n int) Option {
	return func(s *Store) { s.writers = semaphore.NewWeighted(int64(n)) }
}

// inTx runs fn in a transaction, committed when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	release, err := s.writeSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// writeSlot waits for one of the transaction slots of WithWriters, if set, and returns its
// release.
func (s *Store) writeSlot(ctx context.Context) (func(), error) {
	if s.writers == nil {
		return func() {}, nil
	}
	if err := s.writers.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("wait for a transaction slot: %w", err)
	}
	return func() { s.writers.Release(1) }, nil
}

// withOutbox wraps a data-modifying statement that returns whole rows (RETURNING *) so that
// the same statement records each changed row in the outbox with its new version: the change
// and its log entry commit together or not at all.
func withOutbox(aggregate, kind, mutation, columns string) string {
	return fmt.Sprintf(`WITH changed AS (%s),
logged AS (
    INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload)
    SELECT '%s', changed.id::text, '%s', changed.version, to_jsonb(changed) - 'search_vector' FROM changed
)
SELECT %s FROM changed`, mutation, aggregate, kind, columns)
}

// uuidArray converts ids for a uuid[] parameter (see db.UUIDs).
func uuidArray(ids []string) []pgtype.UUID { return db.UUIDs(ids) }

// args collects positional query arguments while SQL is assembled.
type args []any

// add appends v and returns its placeholder.
func (a *args) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

// and joins conditions into a WHERE clause ("" when there are none).
func and(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}
