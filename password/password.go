// Package password hashes customers' passwords with Argon2id (RFC 9106) and checks them in
// constant time. Hashes are PHC strings that carry their parameters, so that parameters can
// be raised later: a hash made with older ones still verifies and is reported for rehashing.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8
}

// Default are the parameters of new hashes: OWASP's first Argon2id recommendation (19 MiB,
// 2 passes, 1 lane). BenchmarkHash measures OWASP's equivalent candidates on this project's
// machines (README, "Customers"): 19 MiB and 2 passes cost no more time than 46 MiB and 1
// pass or 12 MiB and 3, at less than half the memory of the first, which matters on a
// server whose memory is bounded (GOMEMLIMIT) and that hashes for several sign-ins at once.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// MinLength and MaxLength bound a password, in bytes: short ones are guessed, and
	// hashing cost should not grow with the input an attacker chooses.
	MinLength = 10
	MaxLength = 256
)

// Hasher hashes and verifies passwords, at most Concurrency at once: each hash holds
// Params.Memory, and a burst of sign-ins must not take the server's memory with it.
type Hasher struct {
	params Params
	slots  chan struct{}
	// dummy is verified against when there is no hash to verify (an unknown email), so that
	// the answer takes as long as a wrong password's.
	dummy string
}

// NewHasher returns a hasher with params and at most concurrency hashes at a time.
func NewHasher(params Params, concurrency int) *Hasher {
	h := &Hasher{params: params, slots: make(chan struct{}, max(concurrency, 1))}
	h.dummy = h.hash([]byte(rand.Text()))
	return h
}

// ErrMismatch is Verify's answer for a wrong password.
var ErrMismatch = errors.New("password mismatch")

// Hash returns the PHC string of a new hash of password with a random salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash([]byte(password)), nil
}

func (h *Hasher) hash(password []byte) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	p := h.params
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// Verify checks password against encoded, a hash of Hash. An empty encoded (no account, or
// an account without a password) is checked against a dummy hash and fails: it takes as long
// as a wrong password. rehash is true when the password matched a hash of other parameters
// than the hasher's: the caller should store a new hash.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (rehash bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	known := encoded != ""
	if !known {
		encoded = h.dummy
	}
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 || !known {
		return false, ErrMismatch
	}
	return p != h.params, nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// decode parses a PHC string of Argon2id.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, nil, nil, errors.New("not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, fmt.Errorf("argon2id hash of version %q", parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("argon2id parameters %q: %w", parts[3], err)
	}
	if salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return p, nil, nil, fmt.Errorf("argon2id salt: %w", err)
	}
	if key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(key) == 0 {
		return p, nil, nil, fmt.Errorf("argon2id key: %v", err)
	}
	return p, salt, key, nil
}

// Weakness says why password is too weak to accept, or "" when it is not: too short, too
// long to hash at a bounded cost, or a single repeated character.
func Weakness(password string) string {
	switch {
	case len(password) < MinLength:
		return fmt.Sprintf("a password needs at least %d characters", MinLength)
	case len(password) > MaxLength:
		return fmt.Sprintf("a password has at most %d bytes", MaxLength)
	case strings.Count(password, password[:1]) == len(password):
		return "a password of one repeated character is too easy to guess"
	}
	return ""
}
