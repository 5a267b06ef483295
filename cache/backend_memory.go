package cache

import (
	"context"
	"errors"
	"sync"
	"time"
)

// MemoryBackend is the in-process Backend of the embedded default: a size-bounded map with
// TTLs, locks and pub/sub that reach only this process, so it serves a single instance.
type MemoryBackend struct {
	max int

	mu     sync.Mutex
	values map[string]memoryItem
	locks  map[string]memoryItem // Value holds the token
	subs   map[string]map[*memorySubscription]struct{}
}

type memoryItem struct {
	value   []byte
	expires time.Time
}

// DefaultMemoryEntries bounds a MemoryBackend made with a size of 0.
const DefaultMemoryEntries = 100_000

// memorySubscriptionBuffer is how many undelivered messages a subscription holds before it
// reports itself broken rather than block publishers.
const memorySubscriptionBuffer = 1024

// NewMemoryBackend returns an empty MemoryBackend holding at most maxEntries values
// (DefaultMemoryEntries when maxEntries is 0 or less).
func NewMemoryBackend(maxEntries int) *MemoryBackend {
	if maxEntries <= 0 {
		maxEntries = DefaultMemoryEntries
	}
	return &MemoryBackend{
		max:    maxEntries,
		values: make(map[string]memoryItem),
		locks:  make(map[string]memoryItem),
		subs:   make(map[string]map[*memorySubscription]struct{}),
	}
}

// Get returns the live value of each key.
func (m *MemoryBackend) Get(_ context.Context, keys []string) ([][]byte, error) {
	now := time.Now()
	out := make([][]byte, len(keys))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range keys {
		out[i] = m.liveValue(k, now)
	}
	return out, nil
}

// Set stores the entries.
func (m *MemoryBackend) Set(_ context.Context, entries []Entry) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		m.store(e, now)
	}
	return nil
}

// Delete removes the values and locks of keys.
func (m *MemoryBackend) Delete(_ context.Context, keys []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.values, k)
		delete(m.locks, k)
	}
	return nil
}

// Lock takes the free locks of keys and reads their values.
func (m *MemoryBackend) Lock(_ context.Context, keys []string, ttl time.Duration) ([]Claim, error) {
	now := time.Now()
	tokens := lockTokens(len(keys))
	claims := make([]Claim, len(keys))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocks(now)
	for i, k := range keys {
		if l, ok := m.locks[k]; !ok || !now.Before(l.expires) {
			m.locks[k] = memoryItem{value: []byte(tokens[i]), expires: now.Add(ttl)}
			claims[i].Token = tokens[i]
		}
		claims[i].Value = m.liveValue(k, now)
	}
	return claims, nil
}

// Unlock releases the locks still held with these tokens.
func (m *MemoryBackend) Unlock(_ context.Context, keys, tokens []string) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range keys {
		if m.holds(k, tokens[i], now) {
			delete(m.locks, k)
		}
	}
	return nil
}

// Fill stores the entries whose locks are still held with these tokens and releases them.
func (m *MemoryBackend) Fill(_ context.Context, entries []Entry, tokens []string) (int, error) {
	now := time.Now()
	stored := 0
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, e := range entries {
		if !m.holds(e.Key, tokens[i], now) {
			continue
		}
		m.store(e, now)
		delete(m.locks, e.Key)
		stored++
	}
	return stored, nil
}

// Publish delivers payload to this process's subscribers of channel.
func (m *MemoryBackend) Publish(_ context.Context, channel string, payload []byte) error {
	msg := Message{Channel: channel, Payload: payload}
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs[channel] {
		s.deliver(msg)
	}
	return nil
}

// Subscribe subscribes to channels in this process.
func (m *MemoryBackend) Subscribe(_ context.Context, channels ...string) (Subscription, error) {
	s := &memorySubscription{
		backend:  m,
		channels: channels,
		msgs:     make(chan Message, memorySubscriptionBuffer),
		broken:   make(chan struct{}),
		closed:   make(chan struct{}),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range channels {
		if m.subs[c] == nil {
			m.subs[c] = make(map[*memorySubscription]struct{})
		}
		m.subs[c][s] = struct{}{}
	}
	return s, nil
}

// liveValue returns k's value unless it expired. The caller holds m.mu.
func (m *MemoryBackend) liveValue(k string, now time.Time) []byte {
	it, ok := m.values[k]
	if !ok {
		return nil
	}
	if !now.Before(it.expires) {
		delete(m.values, k)
		return nil
	}
	return it.value
}

// holds reports whether k's lock is live and held with token. The caller holds m.mu.
func (m *MemoryBackend) holds(k, token string, now time.Time) bool {
	l, ok := m.locks[k]
	return ok && now.Before(l.expires) && string(l.value) == token
}

// store puts e, evicting first when the map is full. The caller holds m.mu.
func (m *MemoryBackend) store(e Entry, now time.Time) {
	if _, ok := m.values[e.Key]; !ok && len(m.values) >= m.max {
		m.evict(now)
	}
	m.values[e.Key] = memoryItem{value: e.Value, expires: now.Add(e.TTL)}
}

// evict makes room in a full backend. The caller holds m.mu.
func (m *MemoryBackend) evict(now time.Time) {
	evictSample(m.values, func(it memoryItem) bool { return !now.Before(it.expires) })
}

// sweepLocks drops expired locks once there are as many locks as values may be: the locks
// of holders that died are otherwise only replaced when their key is locked again.
func (m *MemoryBackend) sweepLocks(now time.Time) {
	if len(m.locks) < m.max {
		return
	}
	for k, l := range m.locks {
		if !now.Before(l.expires) {
			delete(m.locks, k)
		}
	}
}

// errMemorySubscriptionOverflow reports that a subscriber fell so far behind that messages
// were dropped.
var errMemorySubscriptionOverflow = errors.New("cache: memory subscription overflowed; messages were lost")

var errMemorySubscriptionClosed = errors.New("cache: memory subscription closed")

type memorySubscription struct {
	backend  *MemoryBackend
	channels []string
	msgs     chan Message
	broken   chan struct{} // closed when a message was dropped
	closed   chan struct{}
	once     sync.Once // closes broken
	stop     sync.Once // closes closed
}

// deliver queues msg without blocking the publisher; a full queue breaks the subscription,
// which its reader learns from Receive. The caller holds the backend's lock.
func (s *memorySubscription) deliver(msg Message) {
	select {
	case s.msgs <- msg:
	default:
		s.once.Do(func() { close(s.broken) })
	}
}

// Receive returns the next message, or an error once a message was lost.
func (s *memorySubscription) Receive(ctx context.Context) (Message, error) {
	select {
	case <-s.broken:
		return Message{}, errMemorySubscriptionOverflow
	case <-s.closed:
		return Message{}, errMemorySubscriptionClosed
	default:
	}
	select {
	case msg := <-s.msgs:
		return msg, nil
	case <-s.broken:
		return Message{}, errMemorySubscriptionOverflow
	case <-s.closed:
		return Message{}, errMemorySubscriptionClosed
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Close unsubscribes.
func (s *memorySubscription) Close() error {
	s.stop.Do(func() {
		close(s.closed)
		s.backend.mu.Lock()
		defer s.backend.mu.Unlock()
		for _, c := range s.channels {
			delete(s.backend.subs[c], s)
			if len(s.backend.subs[c]) == 0 {
				delete(s.backend.subs, c)
			}
		}
	})
	return nil
}
