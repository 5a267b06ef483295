package resolvers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/homegoods/storefront/graph/model"
)

// PersistedQueries is the automatic persisted query protocol (the one of Apollo's clients
// and gqlgen's extension.AutomaticPersistedQuery): a client sends the hex SHA-256 of its
// query alone and, if the server does not know it (PERSISTED_QUERY_NOT_FOUND), the query
// with its hash, which registers it.
//
// Unlike gqlgen's extension, it stores a query only once the operation has been parsed,
// validated against the schema, priced within the limits and charged to the client's
// rate limit, and only when the query is at most MaxBytes long; storing is charged on top,
// by size. A client can therefore store only what it could run, as fast as its budget
// allows, and nothing that is not an operation of this API. Add it after the rate limit:
// gqlgen runs extensions in the order of Use.
type PersistedQueries struct {
	store    graphql.Cache[string]
	maxBytes int
	charge   func(ctx context.Context, cost int) bool
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
	graphql.OperationContextMutator
} = (*PersistedQueries)(nil)

// PersistedQueryOptions configure PersistedQueries.
type PersistedQueryOptions struct {
	// MaxBytes is the longest query stored (DefaultPersistedQueryMaxBytes when 0).
	// Longer ones still run; clients send them whole every time.
	MaxBytes int
	// Limiter, with Key naming the client, is charged for storing: StoreCostPerKiB a
	// started KiB. Nil stores for free.
	Limiter RateLimiter
	Key     func(ctx context.Context) string
}

// DefaultPersistedQueryMaxBytes is longer than the operations of real clients, which are
// a few KiB at most with their fragments.
const DefaultPersistedQueryMaxBytes = 16 << 10

// StoreCostPerKiB is what storing a query charges to the client's budget, per started KiB,
// in the units of operation costs: storing a query of 16 KiB costs as much as a search,
// so that a client's budget stores a few MB a day at most.
const StoreCostPerKiB = 40

// NewPersistedQueries returns the extension storing queries in store (cache.RedisAPQCache,
// shared by every instance, or NewMemoryAPQCache).
func NewPersistedQueries(store graphql.Cache[string], opts PersistedQueryOptions) *PersistedQueries {
	p := &PersistedQueries{store: store, maxBytes: opts.MaxBytes}
	if p.maxBytes <= 0 {
		p.maxBytes = DefaultPersistedQueryMaxBytes
	}
	if opts.Limiter != nil && opts.Key != nil {
		p.charge = func(ctx context.Context, cost int) bool {
			key := opts.Key(ctx)
			if key == "" {
				return true
			}
			ok, _, err := opts.Limiter.Allow(ctx, key, cost)
			return ok && err == nil // what cannot be charged is not stored
		}
	}
	return p
}

// ExtensionName names the extension in gqlgen's stats.
func (*PersistedQueries) ExtensionName() string { return "PersistedQueries" }

// Validate checks the extension's configuration when it is added to a server.
func (p *PersistedQueries) Validate(graphql.ExecutableSchema) error {
	if p.store == nil {
		return errors.New("PersistedQueries needs a store")
	}
	return nil
}

// persistedQueryStats marks an operation that sent its query with its hash: once it has
// passed every check, the query is stored.
const persistedQueryStats = "PersistedQueries"

type pendingQuery struct{ hash string }

// MutateOperationParameters fills in the query of a request that sent its hash alone, and
// checks the hash of one that sent both.
func (p *PersistedQueries) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	ext, ok := raw.Extensions["persistedQuery"].(map[string]any)
	if !ok {
		if raw.Extensions["persistedQuery"] != nil {
			return requestError(model.CodeBadUserInput, "the persistedQuery extension must be an object")
		}
		return nil
	}
	if !isVersion1(ext["version"]) {
		return requestError(model.CodeBadUserInput, "unsupported persisted query version: only 1 is")
	}
	hash, _ := ext["sha256Hash"].(string)
	if raw.Query == "" {
		query, ok := p.store.Get(ctx, hash)
		if !ok {
			err := gqlerror.Errorf("PersistedQueryNotFound")
			errcode.Set(err, "PERSISTED_QUERY_NOT_FOUND")
			return err
		}
		raw.Query = query
		return nil
	}
	if queryHash(raw.Query) != hash {
		return requestError(model.CodeBadUserInput, "the persisted query hash is not the hash of the query")
	}
	if len(raw.Query) <= p.maxBytes {
		graphql.GetOperationContext(ctx).Stats.SetExtension(persistedQueryStats, pendingQuery{hash: hash})
	}
	return nil
}

// MutateOperationContext stores the query of an operation that got this far: it parsed,
// validated and passed the limits before it.
func (p *PersistedQueries) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	pending, ok := oc.Stats.GetExtension(persistedQueryStats).(pendingQuery)
	if !ok {
		return nil
	}
	kib := (len(oc.RawQuery) + 1023) / 1024
	if p.charge == nil || p.charge(ctx, kib*StoreCostPerKiB) {
		p.store.Add(ctx, pending.hash, oc.RawQuery)
	}
	return nil
}

// isVersion1 reports whether v, decoded from JSON with or without UseNumber, is 1.
func isVersion1(v any) bool {
	switch n := v.(type) {
	case json.Number:
		return n.String() == "1"
	case float64:
		return n == 1
	}
	return false
}

// NewMemoryAPQCache returns the in-process query store: the embedded default without Redis,
// for a single server instance. It keeps the size most recently used queries.
func NewMemoryAPQCache(size int) *lru.LRU[string] {
	return lru.New[string](size)
}

// queryHash is the hash of a query in the persisted query protocol: hex SHA-256.
func queryHash(query string) string {
	sum := sha256.Sum256([]byte(query))
	return hex.EncodeToString(sum[:])
}
