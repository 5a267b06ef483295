package model

import "time"

// Session is a visitor's server-side state, shared by every server instance: a guest's cart
// before sign-in, a customer's after.
type Session struct {
	// ID is the session's unguessable identifier; it is the client's only credential for it.
	ID string
	// CustomerID is empty for a guest.
	CustomerID string
	// CartID is empty until the session has a cart.
	CartID    string
	CreatedAt time.Time
	LastSeen  time.Time
}

// IsGuest reports whether no customer is attached to the session.
func (s Session) IsGuest() bool { return s.CustomerID == "" }

// Customer is the customer id, or nil for a guest.
func (s *Session) Customer() *string { return optional(s.CustomerID) }

// Cart is the cart id, or nil before the session has a cart.
func (s *Session) Cart() *string { return optional(s.CartID) }

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// StartedSession is a new session with the token that names it.
type StartedSession struct {
	Token   string
	Session *Session
}
