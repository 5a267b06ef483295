package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/homegoods/storefront/graph/model"
)

// MemorySessions keeps sessions in process memory: the embedded default without Redis. Only
// for a single server instance, and sessions end with the process.
type MemorySessions struct {
	cfg SessionConfig

	mu        sync.Mutex
	sessions  map[string]sessionEntry
	lastSweep time.Time
}

type sessionEntry struct {
	model.Session
	expires time.Time
	// idle and ends are the limits of a bounded session (CreateBounded); zero for others.
	idle time.Duration
	ends time.Time
}

// expiry returns when e expires if it is not used after now.
func (e sessionEntry) expiry(cfg SessionConfig, now time.Time) time.Time {
	if e.idle == 0 {
		return now.Add(cfg.idle(e.CustomerID))
	}
	return minTime(now.Add(e.idle), e.ends)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sessionSweepEvery bounds how long expired sessions keep their memory: abandoned guest
// sessions are never read again, so expiry on read alone would let them pile up.
const sessionSweepEvery = time.Minute

// NewMemorySessions returns an empty in-process session store.
func NewMemorySessions(cfg SessionConfig) *MemorySessions {
	return &MemorySessions{cfg: cfg.withDefaults(), sessions: map[string]sessionEntry{}, lastSweep: time.Now()}
}

// Create starts a session for customerID, or a guest session when customerID is empty.
func (s *MemorySessions) Create(_ context.Context, customerID string) (model.Session, error) {
	return s.create(sessionEntry{Session: model.Session{CustomerID: customerID}}), nil
}

// CreateBounded starts a session of customerID that expires once idle for idle and at ends
// however much it is used.
func (s *MemorySessions) CreateBounded(_ context.Context, customerID string, idle time.Duration, ends time.Time) (model.Session, error) {
	if customerID == "" || idle <= 0 || ends.IsZero() {
		return model.Session{}, errors.New("create session: a bounded session needs a customer, an idle timeout and an end")
	}
	return s.create(sessionEntry{Session: model.Session{CustomerID: customerID}, idle: idle, ends: ends}), nil
}

// create stores e as a new session and returns it.
func (s *MemorySessions) create(e sessionEntry) model.Session {
	now := time.UnixMilli(time.Now().UnixMilli())
	e.ID, e.CreatedAt, e.LastSeen = newSessionID(), now, now
	e.expires = e.expiry(s.cfg, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	s.sessions[e.ID] = e
	return e.Session
}

// Get returns the session id, and records the visit: it sets LastSeen and restarts the
// idle timer. ok is false when the session does not exist or has expired.
func (s *MemorySessions) Get(_ context.Context, id string) (model.Session, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.touch(id, func(*model.Session) {})
	return sess, ok, nil
}

// SetCart records the session's cart. A missing session is NOT_FOUND.
func (s *MemorySessions) SetCart(_ context.Context, id, cartID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.touch(id, func(sess *model.Session) { sess.CartID = cartID }); !ok {
		return model.NotFound("session")
	}
	return nil
}

// AttachCustomer turns the session into customerID's session, with the customer idle
// timeout, keeping its cart. A missing session is NOT_FOUND.
func (s *MemorySessions) AttachCustomer(_ context.Context, id, customerID string) error {
	if customerID == "" {
		return errors.New("attach customer: empty customer id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.touch(id, func(sess *model.Session) { sess.CustomerID = customerID }); !ok {
		return model.NotFound("session")
	}
	return nil
}

// Delete ends the session; deleting a missing session is not an error.
func (s *MemorySessions) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return nil
}

// EndCustomer ends every bounded session of customerID but keep ("" for none) and returns
// the ids it ended with their ends.
func (s *MemorySessions) EndCustomer(_ context.Context, customerID, keep string) (map[string]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ended := map[string]time.Time{}
	for id, e := range s.sessions {
		if e.CustomerID == customerID && !e.ends.IsZero() && id != keep {
			ended[id] = e.ends
			delete(s.sessions, id)
		}
	}
	return ended, nil
}

// touch applies change to a live session, records the visit and restarts its idle timer.
// The caller holds s.mu.
func (s *MemorySessions) touch(id string, change func(*model.Session)) (model.Session, bool) {
	now := time.UnixMilli(time.Now().UnixMilli())
	e, ok := s.sessions[id]
	if !ok || !now.Before(e.expires) {
		delete(s.sessions, id)
		return model.Session{}, false
	}
	change(&e.Session)
	e.LastSeen = now
	e.expires = e.expiry(s.cfg, now)
	s.sessions[id] = e
	return e.Session, true
}

// sweep drops expired sessions at most once per sessionSweepEvery. The caller holds s.mu.
func (s *MemorySessions) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < sessionSweepEvery {
		return
	}
	s.lastSweep = now
	for id, e := range s.sessions {
		if !now.Before(e.expires) {
			delete(s.sessions, id)
		}
	}
}
