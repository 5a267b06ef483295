package resolvers

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/homegoods/storefront/breaker"
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
// does not know yet (registered through another instance since) is looked up in the shared
// registry once.
type Allowlist struct {
	registry OperationRegistry // nil for the in-memory allowlist
	allowAny func(ctx context.Context) bool
	failures *breaker.Log

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

// OperationRegistry is where an allowlist shared by every server instance keeps the
// registered operations by hash (cache.RedisOperations).
type OperationRegistry interface {
	// All returns every registered operation by hash.
	All(ctx context.Context) (map[string]string, error)
	// Put registers query under hash.
	Put(ctx context.Context, hash, query string) error
	// Get returns the query registered under hash, and whether there is one.
	Get(ctx context.Context, hash string) (string, bool, error)
}

// NewSharedAllowlist returns an allowlist shared by every server instance through registry.
func NewSharedAllowlist(registry OperationRegistry, opts AllowlistOptions) *Allowlist {
	a := NewMemoryAllowlist(opts)
	a.registry = registry
	return a
}

// NewMemoryAllowlist returns an allowlist kept in process memory: for a single server
// instance, emptied by a restart.
func NewMemoryAllowlist(opts AllowlistOptions) *Allowlist {
	allowAny := opts.AllowAny
	if allowAny == nil {
		allowAny = func(context.Context) bool { return false }
	}
	return &Allowlist{allowAny: allowAny, failures: breaker.NewLog(opts.Log), known: map[string]string{}}
}

// Load reads every registered operation from the registry, replacing what the instance knew.
func (a *Allowlist) Load(ctx context.Context) error {
	if a.registry == nil {
		return nil
	}
	all, err := a.registry.All(ctx)
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
	hash := queryHash(query)
	if a.registry != nil {
		if err := a.registry.Put(ctx, hash, query); err != nil {
			return "", fmt.Errorf("register operation: %w", err)
		}
	}
	a.remember(hash, query)
	return hash, nil
}

// LoadAndRegisterDir loads the registered operations (Load), then registers the *.graphql
// files of dir, each holding one document, so that every instance started with the same
// files runs them. It returns the names of the operations registered from dir.
func (a *Allowlist) LoadAndRegisterDir(ctx context.Context, dir string, log *slog.Logger) ([]string, error) {
	if err := a.Load(ctx); err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, nil
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.graphql"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			return names, err
		}
		hash, err := a.Register(ctx, string(doc))
		if err != nil {
			return names, fmt.Errorf("register %s: %w", f, err)
		}
		log.Info("operation registered", "file", filepath.Base(f), "sha256", hash)
		names = append(names, OperationNames(string(doc))...)
	}
	return names, nil
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
		a.failures.Warn(ctx, "allowlist lookup failed", err)
		return requestError(model.CodeInternal, "the operation registry is unavailable: try again")
	}
	return requestError(model.CodeForbidden,
		"this server runs registered operations only, and operation %s is not registered", hash)
}

// lookup returns the registered query of hash, asking the registry when the instance does
// not know it yet.
func (a *Allowlist) lookup(ctx context.Context, hash string) (string, bool, error) {
	a.mu.RLock()
	query, ok := a.known[hash]
	a.mu.RUnlock()
	if ok || a.registry == nil {
		return query, ok, nil
	}
	query, ok, err := a.registry.Get(ctx, hash)
	if ok {
		a.remember(hash, query)
	}
	return query, ok, err
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
		return queryHash(raw.Query), nil
	case raw.Query != "" && queryHash(raw.Query) != hash:
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
