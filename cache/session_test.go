package cache_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/graph/model"
)

// sessionStore is the method set both implementations share (the one resolvers declares).
type sessionStore interface {
	Create(ctx context.Context, customerID string) (model.Session, error)
	Get(ctx context.Context, id string) (model.Session, bool, error)
	SetCart(ctx context.Context, id, cartID string) error
	AttachCustomer(ctx context.Context, id, customerID string) error
	Delete(ctx context.Context, id string) error
	CreateBounded(ctx context.Context, customerID string, idle time.Duration, ends time.Time) (model.Session, error)
	EndCustomer(ctx context.Context, customerID, keep string) (map[string]time.Time, error)
}

var (
	_ sessionStore = (*cache.RedisSessions)(nil)
	_ sessionStore = (*cache.MemorySessions)(nil)
)

// sessionBackend is one implementation under test. setup returns a function that opens a
// server instance: on Redis each call is a new client on the same server and prefix, as a
// second server or a restarted one would be; in memory each call is a new, empty store.
type sessionBackend struct {
	name   string
	shared bool // instances see each other's sessions
	setup  func(t *testing.T) func(cache.SessionConfig) sessionStore
}

func sessionBackends() []sessionBackend {
	onRedis := func(client func(testing.TB) (redis.UniversalClient, string)) func(t *testing.T) func(cache.SessionConfig) sessionStore {
		return func(t *testing.T) func(cache.SessionConfig) sessionStore {
			rdb, prefix := client(t)
			return func(cfg cache.SessionConfig) sessionStore {
				return cache.NewRedisSessions(cachetest.Reopen(t, rdb), prefix, cfg)
			}
		}
	}
	return []sessionBackend{
		{name: "memory", setup: func(*testing.T) func(cache.SessionConfig) sessionStore {
			return func(cfg cache.SessionConfig) sessionStore { return cache.NewMemorySessions(cfg) }
		}},
		{name: "redis", shared: true, setup: onRedis(cachetest.Client)},
		{name: "cluster", shared: true, setup: onRedis(cachetest.ClusterClient)},
	}
}

func TestSessionsLifecycle(t *testing.T) {
	for _, b := range sessionBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := b.setup(t)(cache.SessionConfig{})

			before := time.Now().Add(-time.Millisecond)
			created, err := s.Create(ctx, "")
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if !created.IsGuest() || created.CartID != "" || created.CreatedAt.Before(before) || !created.LastSeen.Equal(created.CreatedAt) {
				t.Fatalf("Create = %+v; want a new guest session", created)
			}
			if got := sessionMustGet(t, s, created.ID); got.ID != created.ID || !got.IsGuest() || !got.CreatedAt.Equal(created.CreatedAt) {
				t.Fatalf("Get = %+v; want %+v", got, created)
			}

			if err := s.SetCart(ctx, created.ID, "cart-1"); err != nil {
				t.Fatalf("SetCart: %v", err)
			}
			if err := s.AttachCustomer(ctx, created.ID, "customer-1"); err != nil {
				t.Fatalf("AttachCustomer: %v", err)
			}
			got := sessionMustGet(t, s, created.ID)
			if got.CartID != "cart-1" || got.CustomerID != "customer-1" || got.IsGuest() || got.LastSeen.Before(created.LastSeen) {
				t.Fatalf("Get after SetCart and AttachCustomer = %+v; want cart-1 of customer-1", got)
			}

			customer, err := s.Create(ctx, "customer-2")
			if err != nil || customer.CustomerID != "customer-2" || customer.ID == created.ID {
				t.Fatalf("Create(customer-2) = %+v, %v; want a new session of customer-2", customer, err)
			}

			if err := s.Delete(ctx, created.ID); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := s.Delete(ctx, created.ID); err != nil {
				t.Fatalf("Delete again: %v; want nil", err)
			}
			sessionMustBeGone(t, s, created.ID)
			if got := sessionMustGet(t, s, customer.ID); got.CustomerID != "customer-2" {
				t.Fatalf("the other session after Delete = %+v; want it intact", got)
			}
		})
	}
}

func TestSessionsUnknownIDs(t *testing.T) {
	ids := []struct{ name, id string }{
		{"empty", ""},
		{"short", "abc"},
		{"well-formed but unknown", base64.RawURLEncoding.EncodeToString(make([]byte, 32))},
		{"key-like", "../../session:" + base64.RawURLEncoding.EncodeToString(make([]byte, 24))},
	}
	for _, b := range sessionBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := b.setup(t)(cache.SessionConfig{})
			for _, tc := range ids {
				sessionMustBeGone(t, s, tc.id)
				if err := s.AttachCustomer(ctx, tc.id, "c"); model.ErrorCodeOf(err) != model.CodeNotFound {
					t.Errorf("%s: AttachCustomer error = %v; want NOT_FOUND", tc.name, err)
				}
			}
			sess, err := s.Create(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := s.AttachCustomer(ctx, sess.ID, ""); err == nil {
				t.Errorf("AttachCustomer with no customer = nil; want an error")
			}
		})
	}
}

func TestSessionIDsAreRandom(t *testing.T) {
	s := cache.NewMemorySessions(cache.SessionConfig{})
	seen := map[string]bool{}
	for range 1000 {
		sess, err := s.Create(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(sess.ID)
		if err != nil || len(raw) != 32 {
			t.Fatalf("id %q decodes to %d bytes, %v; want 32 bytes of base64url", sess.ID, len(raw), err)
		}
		if seen[sess.ID] {
			t.Fatalf("id %q repeated", sess.ID)
		}
		seen[sess.ID] = true
	}
}

// TestSessionsSlidingExpiry reads a guest session more often than its idle timeout for longer
// than the timeout, then leaves it idle: it lives while used and expires when not.
func TestSessionsSlidingExpiry(t *testing.T) {
	const idle = time.Second
	for _, b := range sessionBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := b.setup(t)(cache.SessionConfig{GuestIdle: idle, CustomerIdle: time.Minute})
			guest, err1 := s.Create(ctx, "")
			customer, err2 := s.Create(ctx, "customer-1")
			signedIn, err3 := s.Create(ctx, "")
			if err := errors.Join(err1, err2, err3, s.AttachCustomer(ctx, signedIn.ID, "customer-2")); err != nil {
				t.Fatal(err)
			}

			for range 3 {
				time.Sleep(idle / 2)
				sessionMustGet(t, s, guest.ID)
			}
			time.Sleep(idle + idle/3)
			sessionMustBeGone(t, s, guest.ID)
			// Idle as long, but with the customer timeout.
			sessionMustGet(t, s, customer.ID)
			sessionMustGet(t, s, signedIn.ID)
		})
	}
}

// A bounded session slides with its own idle timeout, whatever its kind's, and ends at its
// end however much it is used.
func TestBoundedSessions(t *testing.T) {
	const idle = time.Second
	for _, b := range sessionBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := b.setup(t)(cache.SessionConfig{})
			sliding, err1 := s.CreateBounded(ctx, "customer-1", idle, time.Now().Add(time.Hour))
			ending, err2 := s.CreateBounded(ctx, "customer-1", time.Hour, time.Now().Add(2*idle))
			_, err3 := s.CreateBounded(ctx, "", idle, time.Now().Add(time.Hour))
			if err := errors.Join(err1, err2); err != nil || err3 == nil {
				t.Fatalf("create: %v; a guest's bounded session: %v, want an error", err, err3)
			}
			for range 3 {
				time.Sleep(idle / 2)
				sessionMustGet(t, s, sliding.ID)
				sessionMustGet(t, s, ending.ID)
			}
			time.Sleep(idle + idle/3)
			sessionMustBeGone(t, s, sliding.ID)
			sessionMustBeGone(t, s, ending.ID) // used within its idle timeout, but past its end
		})
	}
}

// EndCustomer ends the customer's bounded sessions but the one kept, and nobody else's.
func TestEndCustomerSessions(t *testing.T) {
	for _, b := range sessionBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := b.setup(t)(cache.SessionConfig{})
			ends := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
			var mine []string
			for range 3 {
				sess, err := s.CreateBounded(ctx, "customer-1", time.Minute, ends)
				if err != nil {
					t.Fatal(err)
				}
				mine = append(mine, sess.ID)
			}
			other, err1 := s.CreateBounded(ctx, "customer-2", time.Minute, ends)
			plain, err2 := s.Create(ctx, "customer-1")
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			ended, err := s.EndCustomer(ctx, "customer-1", mine[0])
			if err != nil {
				t.Fatal(err)
			}
			if len(ended) != 2 || !ended[mine[1]].Equal(ends) || !ended[mine[2]].Equal(ends) {
				t.Errorf("ended %v; want %v and %v until %v", ended, mine[1], mine[2], ends)
			}
			sessionMustBeGone(t, s, mine[1])
			sessionMustBeGone(t, s, mine[2])
			for _, id := range []string{mine[0], other.ID, plain.ID} {
				sessionMustGet(t, s, id)
			}
			if ended, err := s.EndCustomer(ctx, "customer-1", ""); err != nil || len(ended) != 1 {
				t.Errorf("ending all: %v, %v; want the one kept before", ended, err)
			}
			sessionMustBeGone(t, s, mine[0])
		})
	}
}

// TestRedisSessionTTL checks the TTL Redis keeps, which sliding expiry restarts with the
// timeout of the session's kind.
func TestRedisSessionTTL(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := cachetest.Client(t)
	s := cache.NewRedisSessions(rdb, prefix, cache.SessionConfig{})
	sess, err := s.Create(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ttl := func() time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, prefix+"session:"+sess.ID).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if got := ttl(); got <= cache.DefaultGuestIdle-time.Minute || got > cache.DefaultGuestIdle {
		t.Errorf("guest TTL = %v; want %v", got, cache.DefaultGuestIdle)
	}
	if err := rdb.PExpire(ctx, prefix+"session:"+sess.ID, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	sessionMustGet(t, s, sess.ID)
	if got := ttl(); got <= cache.DefaultGuestIdle-time.Minute {
		t.Errorf("guest TTL after Get = %v; want %v again", got, cache.DefaultGuestIdle)
	}
	if err := s.AttachCustomer(ctx, sess.ID, "customer-1"); err != nil {
		t.Fatal(err)
	}
	if got := ttl(); got <= cache.DefaultCustomerIdle-time.Minute || got > cache.DefaultCustomerIdle {
		t.Errorf("customer TTL = %v; want %v", got, cache.DefaultCustomerIdle)
	}
}

// TestSessionsAcrossInstances creates a session on one server instance, uses it on another,
// and reads it back after both restarted.
func TestSessionsAcrossInstances(t *testing.T) {
	for _, b := range sessionBackends() {
		if !b.shared {
			continue // an in-process store belongs to one instance
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			open := b.setup(t)
			one, two := open(cache.SessionConfig{}), open(cache.SessionConfig{})
			sess, err := one.Create(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if err := two.SetCart(ctx, sess.ID, "cart-9"); err != nil {
				t.Fatalf("SetCart on the second instance: %v", err)
			}
			if got := sessionMustGet(t, one, sess.ID); got.CartID != "cart-9" {
				t.Fatalf("first instance reads cart %q; want cart-9", got.CartID)
			}
			restarted := open(cache.SessionConfig{})
			if got := sessionMustGet(t, restarted, sess.ID); got.CartID != "cart-9" || !got.CreatedAt.Equal(sess.CreatedAt) {
				t.Fatalf("after a restart: %+v; want cart-9 created at %v", got, sess.CreatedAt)
			}
		})
	}
}

func sessionMustGet(t *testing.T, s sessionStore, id string) model.Session {
	t.Helper()
	sess, ok, err := s.Get(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("Get(%q) = %v, %v; want the session", id, ok, err)
	}
	return sess
}

func sessionMustBeGone(t *testing.T, s sessionStore, id string) {
	t.Helper()
	ctx := context.Background()
	if sess, ok, err := s.Get(ctx, id); ok || err != nil {
		t.Fatalf("Get(%q) = %+v, %v, %v; want no session", id, sess, ok, err)
	}
	if err := s.SetCart(ctx, id, "cart"); model.ErrorCodeOf(err) != model.CodeNotFound {
		t.Fatalf("SetCart(%q) error = %v; want NOT_FOUND", id, err)
	}
}
