package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/redis/go-redis/v9"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/homegoods/storefront/graph/model"
)

// Allowlist is a gqlgen extension for production that runs registered operations only, so
// that clients cannot send arbitrary queries: any other request is refused with
// extensions.code FORBIDDEN. Clients send the operation's text, or only its hash the way
// automatic persisted queries do ({"extensions": {"persistedQuery": {"version": 1,
// "sha256Hash": "<hex sha256 of the text>"}}}), and the extension fills in the text. Use it
// instead of extension.AutomaticPersistedQuery, not with it.
//
// Registered operations are kept in memory, loaded with Load at start; a hash this instance
// does not know yet (registered through another instance since) is looked up in Redis once.
type Allowlist struct {
	rdb      redis.UniversalClient // nil for the in-memory allowlist
	key      string
	allowAny func(ctx context.Context) bool
	failures *ratelimitLog

	mu    sync.RWMutex
	known map[string]string // query by hash
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = (*Allowlist)(nil)

// AllowlistOptions configure an Allowlist.
type AllowlistOptions struct {
	// AllowAny lets a request run operations that are not registered, such as a
	// merchandiser's in the playground. When nil, no request may.
	AllowAny func(ctx context.Context) bool
	// Log receives Redis failures, at most one line a minute (slog.Default when nil).
	Log *slog.Logger
}

// NewRedisAllowlist returns an allowlist shared by every server instance, registered in the
// Redis hash prefix+"apq:allowlist" (hash → query).
func NewRedisAllowlist(rdb redis.UniversalClient, prefix string, opts AllowlistOptions) *Allowlist {
	a := NewMemoryAllowlist(opts)
	a.rdb, a.key = rdb, prefix+"apq:allowlist"
	return a
}

// NewMemoryAllowlist returns an allowlist kept in process memory: for a single server
// instance, emptied by a restart.
func NewMemoryAllowlist(opts AllowlistOptions) *Allowlist {
	allowAny := opts.AllowAny
	if allowAny == nil {
		allowAny = func(context.Context) bool { return false }
	}
	return &Allowlist{allowAny: allowAny, failures: newRatelimitLog(opts.Log), known: map[string]string{}}
}

// Load reads every registered operation from Redis, replacing what the instance knew.
func (a *Allowlist) Load(ctx context.Context) error {
	if a.rdb == nil {
		return nil
	}
	all, err := a.rdb.HGetAll(ctx, a.key).Result()
	if err != nil {
		return fmt.Errorf("load allowlist: %w", err)
	}
	a.mu.Lock()
	a.known = all
	a.mu.Unlock()
	return nil
}

// Register adds an operation document to the allowlist and returns its hash, which clients
// may send instead of the text. The text must parse; registering it again is harmless.
func (a *Allowlist) Register(ctx context.Context, query string) (string, error) {
	if _, err := parser.ParseQuery(&ast.Source{Input: query}); err != nil {
		return "", fmt.Errorf("register operation: %w", err)
	}
	hash := apqHash(query)
	if a.rdb != nil {
		if err := a.rdb.HSet(ctx, a.key, hash, query).Err(); err != nil {
			return "", fmt.Errorf("register operation: %w", err)
		}
	}
	a.remember(hash, query)
	return hash, nil
}

// ExtensionName names the extension in gqlgen's stats.
func (*Allowlist) ExtensionName() string { return "Allowlist" }

// Validate has nothing to check against the schema: operations are validated when they run.
func (*Allowlist) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationParameters fills in the text of a registered operation sent by hash and
// refuses operations that are not registered.
func (a *Allowlist) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	hash, gqlErr := allowlistRequestHash(raw)
	if gqlErr != nil {
		return gqlErr
	}
	query, ok, err := a.lookup(ctx, hash)
	switch {
	case ok:
		raw.Query = query
		return nil
	case raw.Query != "" && a.allowAny(ctx):
		return nil
	case err != nil:
		a.failures.warn(ctx, "allowlist lookup failed", err)
		return requestError(model.CodeInternal, "the operation registry is unavailable: try again")
	}
	return requestError(model.CodeForbidden,
		"this server runs registered operations only, and operation %s is not registered", hash)
}

// lookup returns the registered query of hash, asking Redis when the instance does not know
// it yet.
func (a *Allowlist) lookup(ctx context.Context, hash string) (string, bool, error) {
	if !apqHashValid(hash) {
		return "", false, nil
	}
	a.mu.RLock()
	query, ok := a.known[hash]
	a.mu.RUnlock()
	if ok || a.rdb == nil {
		return query, ok, nil
	}
	query, err := a.rdb.HGet(ctx, a.key, hash).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	a.remember(hash, query)
	return query, true, nil
}

func (a *Allowlist) remember(hash, query string) {
	a.mu.Lock()
	a.known[hash] = query
	a.mu.Unlock()
}

// allowlistRequestHash is the hash the request names in its persistedQuery extension, or the
// hash of its text. A hash sent with a text must be the text's.
func allowlistRequestHash(raw *graphql.RawParams) (string, *gqlerror.Error) {
	pq, _ := raw.Extensions["persistedQuery"].(map[string]any)
	hash, _ := pq["sha256Hash"].(string)
	switch {
	case hash == "":
		return apqHash(raw.Query), nil
	case raw.Query != "" && apqHash(raw.Query) != hash:
		return "", requestError(model.CodeBadUserInput, "the persisted query hash is not the hash of the query")
	}
	return hash, nil
}

// requestError is an error of the request itself, with its code.
func requestError(code model.ErrorCode, format string, args ...any) *gqlerror.Error {
	err := gqlerror.Errorf(format, args...)
	err.Extensions = map[string]any{"code": string(code)}
	return err
}
