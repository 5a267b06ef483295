package cache

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/homegoods/storefront/breaker"
	"github.com/redis/go-redis/v9"
)

// The revocation list holds the ids (jti) of bearer tokens revoked before their expiry, each
// until that expiry: after it the token is refused anyway. The API server asks it on every
// request and for every open subscription, so each instance answers from a copy in its own
// memory: Revoked costs no round trip, and Changed wakes the subscriptions that must look
// again.

// revokedSet is a copy of the list in process memory.
type revokedSet struct {
	mu      sync.Mutex
	until   map[string]time.Time
	changed chan struct{}
}

func newRevokedSet() *revokedSet {
	return &revokedSet{until: map[string]time.Time{}, changed: make(chan struct{})}
}

// Revoked reports whether the token id is revoked.
func (s *revokedSet) Revoked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.until[id]
	return ok && time.Now().Before(until)
}

// Changed returns a channel closed when the list next gains an id.
func (s *revokedSet) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// add merges entries into the copy and forgets the ids whose time is over. An id is never
// dropped before its time, even when Redis lost it (a restart without persistence).
func (s *revokedSet) add(entries map[string]time.Time) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	gained := false
	for id, until := range entries {
		if cur, ok := s.until[id]; until.After(now) && (!ok || until.After(cur)) {
			s.until[id] = until
			gained = gained || !ok
		}
	}
	for id, until := range s.until {
		if !until.After(now) {
			delete(s.until, id)
		}
	}
	if gained {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// MemoryRevocations is the revocation list of a single instance without Redis.
type MemoryRevocations struct{ *revokedSet }

// NewMemoryRevocations returns an empty list.
func NewMemoryRevocations() *MemoryRevocations { return &MemoryRevocations{newRevokedSet()} }

// Revoke adds id to the list until until.
func (m *MemoryRevocations) Revoke(_ context.Context, id string, until time.Time) error {
	m.add(map[string]time.Time{id: until})
	return nil
}

// RedisRevocations is the revocation list shared by every instance: a sorted set in Redis
// (id scored by the Unix second until which it matters) and a version key that every
// revocation changes, both in one hash slot for Redis Cluster. Each instance reads the
// version every RevocationRefresh and the set when the version moved, so a revocation made
// through any instance is honoured by all within that interval and a round trip.
type RedisRevocations struct {
	*revokedSet
	rdb          redis.UniversalClient
	key, version string
	every        time.Duration
	failures     *breaker.Log

	seen string // the version last read; "" before the first read
}

// RevocationRefresh is how often an instance looks for new revocations.
const RevocationRefresh = 250 * time.Millisecond

// NewRedisRevocations returns the list kept under prefix+"{revoked}". Run keeps this
// instance's copy current.
func NewRedisRevocations(rdb redis.UniversalClient, prefix string, log *slog.Logger) *RedisRevocations {
	return &RedisRevocations{revokedSet: newRevokedSet(), rdb: rdb, key: prefix + "{revoked}",
		version: prefix + "{revoked}:version", every: RevocationRefresh, failures: breaker.NewLog(log)}
}

// revokeScript adds an id (ARGV[1]) until a Unix second (ARGV[2]), never shortening an
// earlier revocation, drops the ids whose time is over (ARGV[3]: now), and sets a new
// version (ARGV[4]). KEYS: the set, the version.
var revokeScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('SET', KEYS[2], ARGV[4])
return 1
`)

// Revoke adds id to the list until until, for every instance; this one honours it at once.
func (r *RedisRevocations) Revoke(ctx context.Context, id string, until time.Time) error {
	err := revokeScript.Run(ctx, r.rdb, []string{r.key, r.version},
		id, until.Unix()+1, time.Now().Unix(), rand.Text()).Err() // whole seconds, rounded up
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	r.add(map[string]time.Time{id: until})
	return nil
}

// Run keeps the copy current until ctx ends. While Redis fails, the copy stays as it was
// (revocations already known are still honoured) and the failure is logged once a minute.
func (r *RedisRevocations) Run(ctx context.Context) error {
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	for {
		if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
			r.failures.Warn(ctx, "revoked tokens: cannot read the list; honouring the copy in memory", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// refresh reads the list when its version moved since the last read. A version that went
// missing (Redis lost its data) also counts as a move.
func (r *RedisRevocations) refresh(ctx context.Context) error {
	version, err := r.rdb.Get(ctx, r.version).Result()
	switch {
	case errors.Is(err, redis.Nil):
		version = "none"
	case err != nil:
		return err
	}
	if version == r.seen {
		return nil
	}
	now := time.Now()
	found, err := r.rdb.ZRangeByScoreWithScores(ctx, r.key, &redis.ZRangeBy{
		Min: "(" + strconv.FormatInt(now.Unix(), 10), Max: "+inf"}).Result()
	if err != nil {
		return err
	}
	entries := make(map[string]time.Time, len(found))
	for _, z := range found {
		if id, ok := z.Member.(string); ok {
			entries[id] = time.Unix(int64(z.Score), 0)
		}
	}
	r.add(entries)
	r.seen = version
	return nil
}
