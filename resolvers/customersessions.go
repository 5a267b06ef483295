package resolvers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/homegoods/storefront/graph/model"
)

// A customer's access token (customerRegister, customerSignIn) names a session kept in the
// session store (Redis, shared by every instance): a signed token with a sid claim, not the
// session id alone. The signature lets any instance refuse a forged, malformed or outlived
// token without a round trip, and carries role and customer, so that the session check is
// one script call that answers "alive?" and moves the idle timer on (Get); each instance
// remembers the answer for a moment (sessionCheckTTL), so a session costs at most one round
// trip a second per instance however many requests use it. The session is
// what can end early: it idles out after CustomerTokenIdle without use, ends at the token's
// expiry (CustomerTokenTTL after sign-in) however much it is used, and ends when the customer
// signs out, signs out everywhere, or changes or resets the password. Ending one deletes it,
// so that the next request anywhere is refused, and puts its id on the revocation list until
// its end, so that every instance refuses it, and ends its open subscriptions, within a
// refresh of the list, whatever it remembers; each open subscription also checks its session every sessionRecheck, which keeps the
// session alive while it is open and ends it if the list's notice was missed.

// CustomerSessions are the sessions behind customers' access tokens (cache.RedisSessions,
// cache.MemorySessions).
type CustomerSessions interface {
	// CreateBounded starts a session that expires once idle for idle, and at ends.
	CreateBounded(ctx context.Context, customerID string, idle time.Duration, ends time.Time) (model.Session, error)
	// Get returns the live session id, extending its life.
	Get(ctx context.Context, id string) (s model.Session, ok bool, err error)
	Delete(ctx context.Context, id string) error
	// EndCustomer ends the customer's bounded sessions but keep and returns their ends.
	EndCustomer(ctx context.Context, customerID, keep string) (map[string]time.Time, error)
}

// The lifetimes of customers' sessions unless configured: a day at most, an hour unused.
const (
	DefaultCustomerTokenTTL  = 24 * time.Hour
	DefaultCustomerTokenIdle = time.Hour
)

// maxSessionRecheck bounds how long an open subscription goes without checking its session.
const maxSessionRecheck = 30 * time.Second

// sessionCheckTTL is how long an instance believes a session it found alive (at most a
// quarter of the idle timeout, so that requests still move the timer on in time): it bounds
// how long a session that ended without a revocation (it idled out, Redis lost it) is still
// honoured. sessionChecksKept bounds the sessions remembered (about 100 bytes each).
const (
	sessionCheckTTL   = time.Second
	sessionChecksKept = 50_000
)

// sessionCheck is a session found alive, and when.
type sessionCheck struct {
	customerID string
	at         time.Time
}

// errSessionStore marks a session check that could not be made: the request is answered
// UNAVAILABLE rather than UNAUTHENTICATED, so that a client keeps its token through a blip.
var errSessionStore = errors.New("the session store cannot be reached")

// noSessions is the store of an Auth without one: it starts no session.
type noSessions struct{}

var errNoSessions = errors.New("this server keeps no sessions")

func (noSessions) CreateBounded(context.Context, string, time.Duration, time.Time) (model.Session, error) {
	return model.Session{}, errNoSessions
}
func (noSessions) Get(context.Context, string) (model.Session, bool, error) {
	return model.Session{}, false, nil
}
func (noSessions) Delete(context.Context, string) error { return errNoSessions }
func (noSessions) EndCustomer(context.Context, string, string) (map[string]time.Time, error) {
	return nil, nil
}

// startSession signs customerID in: a new session and its token, and when the token stops
// working unless used.
func (a *Auth) startSession(ctx context.Context, customerID string) (token string, expires time.Time, err error) {
	now := time.Now()
	ends := now.Add(a.customerTTL)
	s, err := a.sessions.CreateBounded(ctx, customerID, a.customerIdle, ends)
	if err != nil {
		return "", time.Time{}, err
	}
	token, err = a.sign(claims{Role: model.RoleCustomer, SessionID: s.ID, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: customerID, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(ends),
	}})
	return token, minTime(now.Add(a.customerIdle), ends), err
}

// checkSession makes sure p's session is alive and moves its idle timer on: one round trip,
// unless this instance found it alive a moment ago.
func (a *Auth) checkSession(ctx context.Context, p Principal) error {
	if c, ok := a.checked.Get(p.SessionID); ok && c.customerID == p.CustomerID && time.Since(c.at) < a.checkTTL {
		return nil
	}
	err := a.lookupSession(ctx, p)
	if err == nil {
		a.checked.Add(p.SessionID, sessionCheck{customerID: p.CustomerID, at: time.Now()})
	}
	return err
}

// lookupSession asks the store whether p's session is alive, which moves its idle timer on.
func (a *Auth) lookupSession(ctx context.Context, p Principal) error {
	s, ok, err := a.sessions.Get(ctx, p.SessionID)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", errSessionStore, err)
	case !ok || s.CustomerID != p.CustomerID:
		return errors.New("the session has ended")
	}
	return nil
}

// sessionEnded reports whether p's session is known to have ended: an open subscription's
// periodic check, which also keeps the session alive. A store that cannot be reached ends
// nothing.
func (a *Auth) sessionEnded(ctx context.Context, p Principal) bool {
	err := a.lookupSession(ctx, p)
	return err != nil && !errors.Is(err, errSessionStore)
}

// signOutEverywhere ends every session of customerID but keep ("" for none) on every
// instance.
func (a *Auth) signOutEverywhere(ctx context.Context, customerID, keep string) error {
	ended, err := a.sessions.EndCustomer(ctx, customerID, keep)
	if err != nil {
		return err
	}
	for id, ends := range ended {
		if err := a.revoked.Revoke(ctx, id, ends.Add(tokenLeeway)); err != nil {
			return err
		}
	}
	return nil
}

// newSessionChecks returns the memory of sessions found alive.
func newSessionChecks() *lru.Cache[string, sessionCheck] {
	c, _ := lru.New[string, sessionCheck](sessionChecksKept) // fails for a size <= 0 only
	return c
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
