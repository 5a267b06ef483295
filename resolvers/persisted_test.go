package resolvers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/resolvers"
)

var (
	_ graphql.Cache[string] = (*cache.RedisAPQCache)(nil)
	_ graphql.Cache[string] = resolvers.NewMemoryAPQCache(1)
)

// apqBackend is one query store under test. setup returns a function that opens a server
// instance's cache: on Redis each call is a new client on the same server and prefix; in
// memory each call is a new, empty cache.
type apqBackend struct {
	name   string
	shared bool // instances see each other's queries
	setup  func(t *testing.T) func() graphql.Cache[string]
}

func apqBackends() []apqBackend {
	onRedis := func(client func(testing.TB) (redis.UniversalClient, string)) func(*testing.T) func() graphql.Cache[string] {
		return func(t *testing.T) func() graphql.Cache[string] {
			rdb, prefix := client(t)
			return func() graphql.Cache[string] {
				return cache.NewRedisAPQCache(cachetest.Reopen(t, rdb), prefix, 0, nil)
			}
		}
	}
	return []apqBackend{
		{name: "memory", setup: func(*testing.T) func() graphql.Cache[string] {
			return func() graphql.Cache[string] { return resolvers.NewMemoryAPQCache(100) }
		}},
		{name: "redis", shared: true, setup: onRedis(cachetest.Client)},
		{name: "cluster", shared: true, setup: onRedis(cachetest.ClusterClient)},
	}
}

func apqHashOf(query string) string {
	sum := sha256.Sum256([]byte(query))
	return hex.EncodeToString(sum[:])
}

func TestAPQCache(t *testing.T) {
	const query = "query Cheap { cheap }"
	hash := apqHashOf(query)
	for _, b := range apqBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			c := b.setup(t)()
			if got, ok := c.Get(ctx, hash); ok {
				t.Fatalf("Get before Add = %q; want a miss", got)
			}
			c.Add(ctx, hash, query)
			if got, ok := c.Get(ctx, hash); !ok || got != query {
				t.Fatalf("Get = %q, %v; want %q", got, ok, query)
			}
			if got, ok := c.Get(ctx, apqHashOf("{ cheap }")); ok {
				t.Fatalf("Get of another hash = %q; want a miss", got)
			}
		})
	}
}

// TestAPQThroughHandler runs automatic persisted queries on the cache: an unknown
// hash asks for the query, the query registers it, and from then on the hash is enough, on
// every server instance that shares the cache.
func TestAPQThroughHandler(t *testing.T) {
	const query = "query Cheap { cheap }"
	hash := apqHashOf(query)
	for _, b := range apqBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.setup(t)
			one := apqTestHandler(resolvers.NewPersistedQueries(open(), resolvers.PersistedQueryOptions{}))
			if got := apqPost(t, one, apqRequest{hash: hash}); got.code() != "PERSISTED_QUERY_NOT_FOUND" {
				t.Fatalf("unknown hash: %+v; want PERSISTED_QUERY_NOT_FOUND", got)
			}
			if got := apqPost(t, one, apqRequest{query: query, hash: hash}); !got.ok() {
				t.Fatalf("query with hash: %+v; want it to run", got)
			}
			if got := apqPost(t, one, apqRequest{hash: hash}); !got.ok() {
				t.Fatalf("known hash: %+v; want it to run", got)
			}
			if !b.shared {
				return
			}
			two := apqTestHandler(resolvers.NewPersistedQueries(open(), resolvers.PersistedQueryOptions{}))
			if got := apqPost(t, two, apqRequest{hash: hash}); !got.ok() {
				t.Fatalf("hash known to another instance: %+v; want it to run", got)
			}
		})
	}
}

// TestAPQStoresOnlyWhatRuns sends the registrations of the attack, each with its
// correct hash: text that does not parse, a document the schema refuses, one over the
// limits that run before the store, one too long to keep, and one from a client whose
// budget cannot pay for storing it. None of them is stored; a good one is, and is charged.
func TestAPQStoresOnlyWhatRuns(t *testing.T) {
	for _, b := range apqBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			store := b.setup(t)()
			limiter, err := cache.NewMemoryRateLimiter(cache.RateLimit{PerSecond: 1, Burst: 3 * resolvers.StoreCostPerKiB})
			if err != nil {
				t.Fatal(err)
			}
			h := apqTestHandler(extension.FixedComplexityLimit(50),
				resolvers.NewPersistedQueries(store, resolvers.PersistedQueryOptions{MaxBytes: 2048, Limiter: limiter, Key: apqClientOf}))
			long := "{ cheap " + strings.Repeat("# padding\n", 300) + "}"
			refused := []struct{ name, query, code string }{
				{"text that does not parse", "{ cheap", "GRAPHQL_PARSE_FAILED"},
				{"not of the schema", "{ secrets }", "GRAPHQL_VALIDATION_FAILED"},
				{"over the complexity limit", "{ products(first: 60) }", "COMPLEXITY_LIMIT_EXCEEDED"},
				{"longer than MaxBytes", long, ""},
			}
			for _, r := range refused {
				hash := apqHashOf(r.query)
				if got := apqPost(t, h, apqRequest{query: r.query, hash: hash, client: "a"}); got.code() != r.code {
					t.Fatalf("%s with its hash: %+v; want code %q", r.name, got, r.code)
				}
				if got, ok := store.Get(context.Background(), hash); ok {
					t.Errorf("%s: stored %q; want nothing", r.name, got)
				}
			}

			good := "query Good { cheap }"
			if got := apqPost(t, h, apqRequest{query: good, hash: apqHashOf(good), client: "a"}); !got.ok() {
				t.Fatalf("a good query with its hash: %+v; want it to run", got)
			}
			if _, ok := store.Get(context.Background(), apqHashOf(good)); !ok {
				t.Fatal("the good query was not stored")
			}
			// It was charged: the budget of 3 KiB has room for 2 more, not 3.
			for i := range 3 {
				q := fmt.Sprintf("query Good%d { cheap }", i)
				apqPost(t, h, apqRequest{query: q, hash: apqHashOf(q), client: "a"})
				if _, stored := store.Get(context.Background(), apqHashOf(q)); stored != (i < 2) {
					t.Fatalf("registration %d after the first: stored %v; want %v", i+2, stored, i < 2)
				}
			}
		})
	}
}

// TestRedisAPQCacheRedisDown stops Redis: the hash alone misses, the full query still runs,
// and the failures are logged once.
func TestRedisAPQCacheRedisDown(t *testing.T) {
	const query = "{ cheap }"
	srv := cachetest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	var logs bytes.Buffer
	c := cache.NewRedisAPQCache(rdb, "t:", 0, slog.New(slog.NewTextHandler(&logs, nil)))
	h := apqTestHandler(resolvers.NewPersistedQueries(c, resolvers.PersistedQueryOptions{}))
	srv.Stop()

	for range 3 {
		if got := apqPost(t, h, apqRequest{hash: apqHashOf(query)}); got.code() != "PERSISTED_QUERY_NOT_FOUND" {
			t.Fatalf("hash without Redis: %+v; want PERSISTED_QUERY_NOT_FOUND", got)
		}
		if got := apqPost(t, h, apqRequest{query: query, hash: apqHashOf(query)}); !got.ok() {
			t.Fatalf("query without Redis: %+v; want it to run", got)
		}
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Fatalf("logged %d lines for 6 failures; want 1:\n%s", n, logs.String())
	}

	// Back after the pause, empty: the query registers again.
	srv.Start()
	time.Sleep(1100 * time.Millisecond)
	if got := apqPost(t, h, apqRequest{query: query, hash: apqHashOf(query)}); !got.ok() {
		t.Fatalf("query after Redis is back: %+v; want it to run", got)
	}
	if got := apqPost(t, h, apqRequest{hash: apqHashOf(query)}); !got.ok() {
		t.Fatalf("hash after Redis is back: %+v; want it to run", got)
	}
}

type allowlistBackend struct {
	name   string
	shared bool
	// setup returns a function that opens a server instance's allowlist.
	setup func(t *testing.T) func(resolvers.AllowlistOptions) *resolvers.Allowlist
}

func allowlistBackends() []allowlistBackend {
	onRedis := func(client func(testing.TB) (redis.UniversalClient, string)) func(*testing.T) func(resolvers.AllowlistOptions) *resolvers.Allowlist {
		return func(t *testing.T) func(resolvers.AllowlistOptions) *resolvers.Allowlist {
			rdb, prefix := client(t)
			return func(opts resolvers.AllowlistOptions) *resolvers.Allowlist {
				return resolvers.NewSharedAllowlist(cache.NewRedisOperations(cachetest.Reopen(t, rdb), prefix), opts)
			}
		}
	}
	return []allowlistBackend{
		{name: "memory", setup: func(*testing.T) func(resolvers.AllowlistOptions) *resolvers.Allowlist {
			return resolvers.NewMemoryAllowlist
		}},
		{name: "redis", shared: true, setup: onRedis(cachetest.Client)},
		{name: "cluster", shared: true, setup: onRedis(cachetest.ClusterClient)},
	}
}

func TestAllowlist(t *testing.T) {
	const registered, other = "query Cheap { cheap }", "{ products(first: 1) }"
	tests := []struct {
		name string
		req  apqRequest
		want string // extensions.code; "" when the operation runs
	}{
		{"registered, by hash", apqRequest{hash: apqHashOf(registered)}, ""},
		{"registered, by text", apqRequest{query: registered}, ""},
		{"registered, by text and hash", apqRequest{query: registered, hash: apqHashOf(registered)}, ""},
		{"unregistered text", apqRequest{query: other}, "FORBIDDEN"},
		{"unregistered hash", apqRequest{hash: apqHashOf(other)}, "FORBIDDEN"},
		{"malformed hash", apqRequest{hash: "not-a-hash"}, "FORBIDDEN"},
		{"registered hash with another text", apqRequest{query: other, hash: apqHashOf(registered)}, "BAD_USER_INPUT"},
		{"no query", apqRequest{}, "FORBIDDEN"},
		{"merchandiser, unregistered text", apqRequest{query: other, client: "merchandiser"}, ""},
		{"merchandiser, registered hash", apqRequest{hash: apqHashOf(registered), client: "merchandiser"}, ""},
		{"merchandiser, unregistered hash", apqRequest{hash: apqHashOf(other), client: "merchandiser"}, "FORBIDDEN"},
	}
	for _, b := range allowlistBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			a := b.setup(t)(resolvers.AllowlistOptions{
				AllowAny: func(ctx context.Context) bool { return apqClientOf(ctx) == "merchandiser" },
			})
			hash, err := a.Register(context.Background(), registered)
			if err != nil || hash != apqHashOf(registered) {
				t.Fatalf("Register = %q, %v; want %q", hash, err, apqHashOf(registered))
			}
			if _, err := a.Register(context.Background(), "{ cheap"); err == nil {
				t.Errorf("Register of a query that does not parse = nil; want an error")
			}
			h := apqTestHandler(a)
			for _, tc := range tests {
				got := apqPost(t, h, tc.req)
				if got.code() != tc.want || (tc.want == "") != got.ok() {
					t.Errorf("%s: %+v; want code %q", tc.name, got, tc.want)
				}
				if tc.want == "FORBIDDEN" && !strings.Contains(got.Errors[0].Message, "registered operations only") {
					t.Errorf("%s: message %q; want it to say why", tc.name, got.Errors[0].Message)
				}
			}
		})
	}
}

// TestAllowlistAcrossInstances registers an operation on one instance after another loaded
// the allowlist: the other finds it in Redis; a new instance loads it.
func TestAllowlistAcrossInstances(t *testing.T) {
	const query = "query Cheap { cheap }"
	hash := apqHashOf(query)
	ctx := context.Background()
	for _, b := range allowlistBackends() {
		if !b.shared {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			open := b.setup(t)
			one, two := open(resolvers.AllowlistOptions{}), open(resolvers.AllowlistOptions{})
			if err := two.Load(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := one.Register(ctx, query); err != nil {
				t.Fatal(err)
			}
			if got := apqPost(t, apqTestHandler(two), apqRequest{hash: hash}); !got.ok() {
				t.Fatalf("hash registered on another instance: %+v; want it to run", got)
			}
			three := open(resolvers.AllowlistOptions{})
			if err := three.Load(ctx); err != nil {
				t.Fatal(err)
			}
			if got := apqPost(t, apqTestHandler(three), apqRequest{hash: hash}); !got.ok() {
				t.Fatalf("hash on a new instance: %+v; want it to run", got)
			}
		})
	}
}

// TestAllowlistRedisDown stops Redis: operations the instance knows still run, the others
// are refused as a failure to retry, not as forbidden.
func TestAllowlistRedisDown(t *testing.T) {
	const query = "query Cheap { cheap }"
	ctx := context.Background()
	srv := cachetest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	var logs bytes.Buffer
	a := resolvers.NewSharedAllowlist(cache.NewRedisOperations(rdb, "t:"), resolvers.AllowlistOptions{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if _, err := a.Register(ctx, query); err != nil {
		t.Fatal(err)
	}
	srv.Stop()

	h := apqTestHandler(a)
	if got := apqPost(t, h, apqRequest{hash: apqHashOf(query)}); !got.ok() {
		t.Fatalf("known hash without Redis: %+v; want it to run", got)
	}
	if got := apqPost(t, h, apqRequest{query: "{ products(first: 1) }"}); got.code() != "INTERNAL" {
		t.Fatalf("unknown query without Redis: %+v; want INTERNAL", got)
	}
	if err := a.Load(ctx); err == nil {
		t.Fatal("Load without Redis = nil; want an error")
	}
	if !strings.Contains(logs.String(), "allowlist lookup failed") {
		t.Fatalf("logs = %q; want the failure", logs.String())
	}
}
