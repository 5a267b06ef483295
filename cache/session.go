package cache

import (
	"crypto/rand"
	"encoding/base64"
	"time"
)

// SessionConfig sets how long a session may stay idle before it expires. Every read and
// write of a session restarts its idle timer (sliding expiry).
type SessionConfig struct {
	// GuestIdle is the idle timeout of guest sessions (default 7 days).
	GuestIdle time.Duration
	// CustomerIdle is the idle timeout of customer sessions (default 30 days).
	CustomerIdle time.Duration
}

// The default idle timeouts: a guest's cart is worth a week, a customer's a month.
const (
	DefaultGuestIdle    = 7 * 24 * time.Hour
	DefaultCustomerIdle = 30 * 24 * time.Hour
)

func (c SessionConfig) withDefaults() SessionConfig {
	if c.GuestIdle <= 0 {
		c.GuestIdle = DefaultGuestIdle
	}
	if c.CustomerIdle <= 0 {
		c.CustomerIdle = DefaultCustomerIdle
	}
	return c
}

// idle returns the idle timeout of a session with or without a customer.
func (c SessionConfig) idle(customerID string) time.Duration {
	if customerID == "" {
		return c.GuestIdle
	}
	return c.CustomerIdle
}

// sessionIDBytes is the entropy of a session id: 256 bits cannot be guessed or enumerated.
const sessionIDBytes = 32

// newSessionID returns a random base64url session id (43 characters, no padding).
func newSessionID() string {
	b := make([]byte, sessionIDBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionIDValid reports whether id could have come from newSessionID. Other ids are
// answered as unknown without a lookup, so that clients cannot choose arbitrary keys.
func sessionIDValid(id string) bool {
	if len(id) != base64.RawURLEncoding.EncodedLen(sessionIDBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id)
	return err == nil
}
