package idp_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/homegoods/storefront/idp"
	"github.com/homegoods/storefront/idp/idptest"
)

const audience = "storefront-api"

func newVerifier(t *testing.T, iss *idptest.Issuer, refetch time.Duration) *idp.Verifier {
	t.Helper()
	v, err := idp.New(context.Background(), idp.Options{Issuer: iss.URL, Audience: audience,
		RoleClaim: "realm_access.roles", MerchandiserRole: "merchandiser", RefetchEvery: refetch})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifyRS256AndES256(t *testing.T) {
	iss := idptest.Start(t)
	rsaKey, ecKey := idptest.NewKey(t, "rsa-1", "RS256"), idptest.NewKey(t, "ec-1", "ES256")
	iss.Publish(rsaKey, ecKey)
	v := newVerifier(t, iss, time.Hour)
	ctx := context.Background()

	id, err := v.Verify(ctx, iss.Token(t, rsaKey, audience, "user-1", map[string]any{
		"email": "Ann@Example.com", "email_verified": true, "name": "Ann Lee", "jti": "t-1",
		"realm_access": map[string]any{"roles": []string{"offline", "merchandiser"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "user-1" || id.Email == nil || *id.Email != "ann@example.com" || id.Name != "Ann Lee" || !id.Merchandiser || id.TokenID != "t-1" {
		t.Fatalf("RS256 identity: got %+v", id)
	}
	id, err = v.Verify(ctx, iss.Token(t, ecKey, audience, "user-2", map[string]any{"email": "bob@example.com", "email_verified": false}))
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != nil || id.Merchandiser {
		t.Fatalf("ES256 identity with an unverified email and no roles: got %+v", id)
	}
	if !v.Mine(iss.Token(t, ecKey, audience, "user-2", nil)) || v.Mine("a.b.c") {
		t.Fatal("Mine: want true for the issuer's tokens only")
	}

	for name, token := range map[string]string{
		"another audience": iss.Token(t, rsaKey, "someone-else", "user-1", nil),
		"another issuer":   iss.Token(t, rsaKey, audience, "user-1", map[string]any{"iss": "https://evil.example"}),
		"expired":          iss.Token(t, rsaKey, audience, "user-1", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
		"no subject":       iss.Token(t, rsaKey, audience, "", nil),
		"HS256":            hs256(t, iss.URL),
	} {
		if _, err := v.Verify(ctx, token); err == nil {
			t.Errorf("%s: accepted; want refused", name)
		}
	}
}

func hs256(t *testing.T, issuer string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": issuer, "aud": audience, "sub": "user-1",
		"exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = "rsa-1"
	s, err := tok.SignedString([]byte("guessable"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestKeyRotation follows the provider to a new key, and refuses tokens of a key it never
// published, fetching the keys at most once per interval for them.
func TestKeyRotation(t *testing.T) {
	iss := idptest.Start(t)
	old, next := idptest.NewKey(t, "key-1", "RS256"), idptest.NewKey(t, "key-2", "ES256")
	iss.Publish(old)
	const every = time.Second
	v := newVerifier(t, iss, every)
	ctx := context.Background()
	if _, err := v.Verify(ctx, iss.Token(t, old, audience, "u", nil)); err != nil {
		t.Fatal(err)
	}
	fetches := iss.Fetches()
	for range 20 {
		if _, err := v.Verify(ctx, iss.Token(t, old, audience, "u", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if got := iss.Fetches(); got != fetches {
		t.Fatalf("tokens of a cached key fetched the keys %d times; want none", got-fetches)
	}

	stranger := idptest.NewKey(t, "key-x", "RS256")
	token := iss.Token(t, stranger, audience, "u", nil)
	time.Sleep(every)
	start := time.Now()
	for range 20 {
		if _, err := v.Verify(ctx, token); err == nil {
			t.Fatal("a token of an unknown key: accepted")
		}
	}
	// One fetch, and one more per interval that the loop took on a loaded machine.
	if got, most := iss.Fetches()-fetches, 1+int(time.Since(start)/every); got < 1 || got > most {
		t.Fatalf("20 tokens of an unknown key fetched the keys %d times; want 1 to %d", got, most)
	}

	iss.Publish(next) // rotated: the old key is gone
	time.Sleep(every)
	if _, err := v.Verify(ctx, iss.Token(t, next, audience, "u", nil)); err != nil {
		t.Fatalf("a token of the new key: %v", err)
	}
	if _, err := v.Verify(ctx, iss.Token(t, old, audience, "u", nil)); err == nil {
		t.Fatal("a token of the retired key: accepted after the keys were fetched again")
	}
}

func TestNewNeedsIssuerAndAudience(t *testing.T) {
	if _, err := idp.New(context.Background(), idp.Options{Issuer: "https://idp.example"}); err == nil {
		t.Fatal("no audience: got nil; want an error")
	}
}
