package resolvers_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/homegoods/storefront/idp"
	"github.com/homegoods/storefront/idp/idptest"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
)

// TestIdentityProviderTokens signs in through a local OpenID Connect issuer: its customers
// are found or created by subject, its merchandisers come from a role claim, its keys
// rotate, and tokens of an unknown key, another audience or another issuer are refused.
func TestIdentityProviderTokens(t *testing.T) {
	iss := idptest.Start(t)
	rsaKey, ecKey := idptest.NewKey(t, "rsa-1", "RS256"), idptest.NewKey(t, "ec-1", "ES256")
	iss.Publish(rsaKey)
	verifier, err := idp.New(context.Background(), idp.Options{Issuer: iss.URL, Audience: "storefront",
		RoleClaim: "groups", MerchandiserRole: "shop-staff", RefetchEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := newShopAPI(t, func(c *resolvers.Config) { c.Auth.AcceptProvider(verifier, c.Catalog.(*store.Store)) })

	ann := iss.Token(t, rsaKey, "storefront", "ann-sub", map[string]any{"email": "ann@example.com", "email_verified": true, "name": "Ann Lee"})
	me := `{ me { id email name hasPassword emailVerifiedAt } }`
	first := s.ok(ann, me, nil)
	if dig(first, "me", "email") != "ann@example.com" || dig(first, "me", "hasPassword") != false || dig(first, "me", "emailVerifiedAt") == nil {
		t.Fatalf("a provider's customer: got %v", first)
	}
	again := iss.Token(t, rsaKey, "storefront", "ann-sub", map[string]any{"name": "Renamed"})
	if got := dig(s.ok(again, me, nil), "me", "id"); got != dig(first, "me", "id") {
		t.Fatalf("the same subject again: customer %v; want %v", got, dig(first, "me", "id"))
	}
	if n := s.count(`SELECT count(*) FROM customers WHERE issuer = $1`, iss.URL); n != 1 {
		t.Fatalf("%d customers of the provider; want 1", n)
	}
	if r := s.do(ann, `{ orders(first: 1) { edges { node { id } } } }`, nil); r.code(t) != "FORBIDDEN" {
		t.Fatalf("a customer asks for orders: got %+v; want FORBIDDEN", r.Errors)
	}
	staff := iss.Token(t, rsaKey, "storefront", "bob-sub", map[string]any{"groups": []string{"shop-staff"}})
	s.ok(staff, `{ orders(first: 1) { edges { node { id } } } }`, nil)

	iss.Publish(ecKey) // rotated to an ES256 key
	time.Sleep(250 * time.Millisecond)
	rotated := iss.Token(t, ecKey, "storefront", "carl-sub", nil)
	if got := dig(s.ok(rotated, me, nil), "me", "name"); got != "Customer" {
		t.Fatalf("a token of the rotated key: got name %v", got)
	}

	stranger := idptest.NewKey(t, "rsa-x", "RS256")
	time.Sleep(250 * time.Millisecond)
	for name, token := range map[string]string{
		"unknown key":      iss.Token(t, stranger, "storefront", "eve", nil),
		"another audience": iss.Token(t, ecKey, "another-api", "eve", nil),
		"expired":          iss.Token(t, ecKey, "storefront", "eve", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
	} {
		if r := s.do(token, me, nil); r.status != http.StatusUnauthorized || r.code(t) != "UNAUTHENTICATED" {
			t.Errorf("%s: got %d %+v; want 401 UNAUTHENTICATED", name, r.status, r.Errors)
		}
	}
	if n := s.count(`SELECT count(*) FROM customers WHERE subject = 'eve'`); n != 0 {
		t.Errorf("refused tokens created %d customers", n)
	}
}
