package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/redis/go-redis/v9"
)

// RedisAPQCache is the query store of PersistedQueries shared by every server instance: a client that registered a query's hash with one instance can send
// the hash alone to any other. Each hash is one key, so it works on a Redis Cluster.
//
// graphql.Cache cannot return errors: when Redis fails, Get misses, and APQ clients resend
// the full query, which still runs. Failures are logged at most once a minute, and after
// one the cache skips Redis for a second, so that requests do not all wait for its timeouts.
type RedisAPQCache struct {
	rdb      redis.UniversalClient
	prefix   string
	ttl      time.Duration
	failures *ratelimitLog
	pause    ratelimitPause
}

var _ graphql.Cache[string] = (*RedisAPQCache)(nil)

// DefaultAPQTTL keeps a query that nobody sent for a day out of Redis: the queries in use
// are read all the time, and each read restarts their TTL.
const DefaultAPQTTL = 24 * time.Hour

// NewRedisAPQCache returns a cache of queries stored under prefix+"apq:", each kept for ttl
// after it was last used (DefaultAPQTTL when ttl is not positive).
func NewRedisAPQCache(rdb redis.UniversalClient, prefix string, ttl time.Duration, log *slog.Logger) *RedisAPQCache {
	if ttl <= 0 {
		ttl = DefaultAPQTTL
	}
	return &RedisAPQCache{rdb: rdb, prefix: prefix + "apq:", ttl: ttl, failures: newRatelimitLog(log)}
}

// Get returns the query of hash and restarts its TTL, so that queries in use never expire.
func (c *RedisAPQCache) Get(ctx context.Context, hash string) (string, bool) {
	if !apqHashValid(hash) || c.pause.active() {
		return "", false
	}
	query, err := c.rdb.GetEx(ctx, c.prefix+hash, c.ttl).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			c.fail(ctx, "persisted query lookup failed", err)
		}
		return "", false
	}
	return query, true
}

// Add stores query under hash. PersistedQueries has checked that hash is the query's hash.
func (c *RedisAPQCache) Add(ctx context.Context, hash, query string) {
	if c.pause.active() {
		return
	}
	if err := c.rdb.Set(ctx, c.prefix+hash, query, c.ttl).Err(); err != nil {
		c.fail(ctx, "persisted query store failed", err)
	}
}

// fail pauses Redis and logs, unless the failure is the request's own: a client that hangs
// up must not switch the cache off for everyone.
func (c *RedisAPQCache) fail(ctx context.Context, msg string, err error) {
	if ctx.Err() != nil {
		return
	}
	c.pause.start()
	c.failures.warn(ctx, msg, err)
}

// NewMemoryAPQCache returns the in-process query store: the embedded default without Redis,
// for a single server instance. It keeps the size most recently used queries.
func NewMemoryAPQCache(size int) *lru.LRU[string] {
	return lru.New[string](size)
}

// apqHash is the hash of a query in the persisted query protocol: hex SHA-256.
func apqHash(query string) string {
	sum := sha256.Sum256([]byte(query))
	return hex.EncodeToString(sum[:])
}

// apqHashValid reports whether hash can be a hex SHA-256, so that clients cannot choose
// arbitrary keys.
func apqHashValid(hash string) bool {
	if len(hash) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(hash)
	return err == nil
}
