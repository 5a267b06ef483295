package password

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fast are parameters that keep tests quick; the algorithm is the same.
var fast = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashAndVerify(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(fast, 2)
	encoded, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(encoded, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q; want a PHC argon2id string with its parameters", encoded)
	}
	if again, _ := h.Hash(ctx, "correct horse battery"); again == encoded {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	if rehash, err := h.Verify(ctx, encoded, "correct horse battery"); err != nil || rehash {
		t.Fatalf("right password: got rehash %v, err %v; want false, nil", rehash, err)
	}
	if _, err := h.Verify(ctx, encoded, "correct horse battery!"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: got %v; want ErrMismatch", err)
	}
	if _, err := h.Verify(ctx, "", "correct horse battery"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("no hash: got %v; want ErrMismatch", err)
	}
	if _, err := h.Verify(ctx, "$argon2id$v=19$m=64,t=1,p=1$!!$!!", "x"); err == nil || errors.Is(err, ErrMismatch) {
		t.Fatalf("malformed hash: got %v; want a decoding error", err)
	}
}

func TestVerifyReportsOldParameters(t *testing.T) {
	ctx := context.Background()
	old, _ := NewHasher(fast, 1).Hash(ctx, "correct horse battery")
	stronger := NewHasher(Params{Memory: 128, Time: 2, Threads: 1}, 1)
	if rehash, err := stronger.Verify(ctx, old, "correct horse battery"); err != nil || !rehash {
		t.Fatalf("hash of older parameters: got rehash %v, err %v; want true, nil", rehash, err)
	}
}

func TestWeakness(t *testing.T) {
	for _, c := range []struct {
		password string
		weak     bool
	}{
		{"short", true},
		{"aaaaaaaaaaaa", true},
		{strings.Repeat("ab", 129), true},
		{"correct horse battery", false},
		{strings.Repeat("ab", 128), false},
	} {
		if got := Weakness(c.password) != ""; got != c.weak {
			t.Errorf("Weakness(%q) = %q; want weak %v", c.password, Weakness(c.password), c.weak)
		}
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	h := NewHasher(fast, 1)
	h.slots <- struct{}{} // the only slot taken
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "correct horse battery"); !errors.Is(err, context.Canceled) {
		t.Fatalf("hash without a free slot: got %v; want to wait and give up with the context", err)
	}
}

// BenchmarkHash times one hash with each candidate of the parameters (memory, passes) that
// OWASP lists for Argon2id, the chosen Default among them: run with -benchtime=20x -cpu 1,2.
func BenchmarkHash(b *testing.B) {
	for _, p := range []Params{
		{Memory: 46 * 1024, Time: 1, Threads: 1},
		{Memory: 19 * 1024, Time: 2, Threads: 1},
		{Memory: 12 * 1024, Time: 3, Threads: 1},
		{Memory: 64 * 1024, Time: 3, Threads: 1},
	} {
		b.Run(fmt.Sprintf("m=%dMiB,t=%d", p.Memory/1024, p.Time), func(b *testing.B) {
			h := NewHasher(p, 1)
			ctx := context.Background()
			for b.Loop() {
				if _, err := h.Hash(ctx, "correct horse battery"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify times a wrong password against an account's hash and a password against
// no hash (an unknown email) with the default parameters: the two must cost the same, so
// that sign-in's timing does not tell which emails have accounts.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	h := NewHasher(Default, 1)
	encoded, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, encoded string }{{"wrong-password", encoded}, {"unknown-email", ""}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := h.Verify(ctx, c.encoded, "wrong horse battery"); !errors.Is(err, ErrMismatch) {
					b.Fatal(err)
				}
			}
		})
	}
}
