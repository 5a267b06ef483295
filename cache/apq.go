package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/breaker"
)

// RedisAPQCache is the query store of the persisted queries extension (a gqlgen
// graphql.Cache) shared by every server instance: a client that registered a query's hash
// with one instance can send the hash alone to any other. Each hash is one key, so it works
// on a Redis Cluster.
//
// graphql.Cache cannot return errors: when Redis fails, Get misses, and APQ clients resend
// the full query, which still runs. Failures are logged at most once a minute, and after
// one the cache skips Redis for a second, so that requests do not all wait for its timeouts.
type RedisAPQCache struct {
	rdb      redis.UniversalClient
	prefix   string
	ttl      time.Duration
	failures *breaker.Log
	breaker  *breaker.Breaker
}

// DefaultAPQTTL keeps a query that nobody sent for a day out of Redis: the queries in use
// are read all the time, and each read restarts their TTL.
const DefaultAPQTTL = 24 * time.Hour

// NewRedisAPQCache returns a cache of queries stored under prefix+"apq:", each kept for ttl
// after it was last used (DefaultAPQTTL when ttl is not positive).
func NewRedisAPQCache(rdb redis.UniversalClient, prefix string, ttl time.Duration, log *slog.Logger) *RedisAPQCache {
	if ttl <= 0 {
		ttl = DefaultAPQTTL
	}
	return &RedisAPQCache{rdb: rdb, prefix: prefix + "apq:", ttl: ttl, failures: breaker.NewLog(log),
		breaker: breaker.New(breaker.Options{Harmless: isMiss})}
}

// Get returns the query of hash and restarts its TTL, so that queries in use never expire.
func (c *RedisAPQCache) Get(ctx context.Context, hash string) (string, bool) {
	if !apqHashValid(hash) {
		return "", false
	}
	var query string
	err := c.breaker.Do(ctx, func(ctx context.Context) (err error) {
		query, err = c.rdb.GetEx(ctx, c.prefix+hash, c.ttl).Result()
		return err
	})
	if err != nil {
		if !isMiss(err) {
			c.fail(ctx, "persisted query lookup failed", err)
		}
		return "", false
	}
	return query, true
}

// Add stores query under hash, which the extension has checked is the query's hash.
func (c *RedisAPQCache) Add(ctx context.Context, hash, query string) {
	err := c.breaker.Do(ctx, func(ctx context.Context) error {
		return c.rdb.Set(ctx, c.prefix+hash, query, c.ttl).Err()
	})
	if err != nil {
		c.fail(ctx, "persisted query store failed", err)
	}
}

// fail logs a failure of Redis, unless it is the request's own (a client that hung up, which
// the breaker does not count either) or the breaker's, which skips Redis for a second
// after a failure.
func (c *RedisAPQCache) fail(ctx context.Context, msg string, err error) {
	if ctx.Err() != nil || errors.Is(err, breaker.ErrOpen) {
		return
	}
	c.failures.Warn(ctx, msg, err)
}

// isMiss tells a key that is not there from a failure.
func isMiss(err error) bool { return errors.Is(err, redis.Nil) }

// apqHashValid reports whether hash can be a hex SHA-256, so that clients cannot choose
// arbitrary keys.
func apqHashValid(hash string) bool {
	if len(hash) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(hash)
	return err == nil
}

// RedisOperations is the registry of an allowlist of operations shared by every server
// instance: the Redis hash prefix+"apq:allowlist" (hash → query).
type RedisOperations struct {
	rdb redis.UniversalClient
	key string
}

// NewRedisOperations returns the registry under prefix.
func NewRedisOperations(rdb redis.UniversalClient, prefix string) *RedisOperations {
	return &RedisOperations{rdb: rdb, key: prefix + "apq:allowlist"}
}

// All returns every registered operation by hash.
func (o *RedisOperations) All(ctx context.Context) (map[string]string, error) {
	return o.rdb.HGetAll(ctx, o.key).Result()
}

// Put registers query under hash.
func (o *RedisOperations) Put(ctx context.Context, hash, query string) error {
	return o.rdb.HSet(ctx, o.key, hash, query).Err()
}

// Get returns the query registered under hash; a hash that is not a hex SHA-256 is never
// looked up, so that clients cannot choose arbitrary keys.
func (o *RedisOperations) Get(ctx context.Context, hash string) (string, bool, error) {
	if !apqHashValid(hash) {
		return "", false, nil
	}
	query, err := o.rdb.HGet(ctx, o.key, hash).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return query, true, nil
}
