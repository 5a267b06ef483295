// Package cache keeps hot read models in front of PostgreSQL: a lock-protected read-through
// cache with invalidation broadcasts, sessions, rankings, persisted queries and rate limits.
//
// The read-through cache runs on a Backend: Redis (single node, Sentinel or Cluster) for a
// fleet of servers, or process memory for the embedded single-instance default. A Breaker
// around the Redis backend makes an outage cost latency, never errors, and a Bus carries
// invalidations and fill notifications between the ReadThrough caches of every server.
package cache

import (
	"context"
	"crypto/rand"
	"strconv"
	"time"
)

// Backend is the store shared by the ReadThrough caches of every server instance. Keys are
// logical names; an implementation places them in its own namespace. Slices passed to or
// returned by a Backend may be kept by it and must not be modified afterwards.
type Backend interface {
	// Get returns the value of each key, in key order, nil where a key has none.
	Get(ctx context.Context, keys []string) ([][]byte, error)
	// Set stores each entry for its TTL.
	Set(ctx context.Context, entries []Entry) error
	// Delete removes the values of keys and any locks held on them, so that a fill whose
	// load began before the delete is not stored (see Fill).
	Delete(ctx context.Context, keys []string) error
	// Lock tries to take the lock of each key for ttl and, in the same round trip, reads each
	// key's value. A key's Claim has a Token when this call took its lock.
	Lock(ctx context.Context, keys []string, ttl time.Duration) ([]Claim, error)
	// Unlock releases the lock of each key if it is still held with the matching token: a
	// holder whose lock expired cannot release the next holder's lock.
	Unlock(ctx context.Context, keys, tokens []string) error
	// Fill stores each entry whose key's lock is still held with the matching token and
	// releases that lock, atomically per key. It returns how many entries it stored.
	Fill(ctx context.Context, entries []Entry, tokens []string) (int, error)
	// Publish sends payload to the subscribers of channel on every server instance.
	Publish(ctx context.Context, channel string, payload []byte) error
	// Subscribe subscribes to channels. When it returns, messages published to them are
	// delivered.
	Subscribe(ctx context.Context, channels ...string) (Subscription, error)
}

// Entry is a value to store under a key for a time.
type Entry struct {
	Key   string
	Value []byte
	TTL   time.Duration
}

// Claim is the outcome of Backend.Lock for one key.
type Claim struct {
	// Token is set when the lock was taken: it releases the lock or fills the key.
	Token string
	// Value is the key's value when it had one.
	Value []byte
}

// Message is one message received on a subscription.
type Message struct {
	Channel string
	Payload []byte
}

// Subscription receives the messages of the channels it was made for.
type Subscription interface {
	// Receive returns the next message. An error means the subscription is broken and
	// messages may have been lost: close it and subscribe again.
	Receive(ctx context.Context) (Message, error)
	Close() error
}

// lockTokens returns n lock tokens that no other holder can guess or repeat: one random
// prefix per batch keeps a batch to a single read of the random source.
func lockTokens(n int) []string {
	base := rand.Text() + "."
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = base + strconv.Itoa(i)
	}
	return tokens
}
