// Package idptest runs a local OpenID Connect issuer for tests: a discovery document and a
// JWKS served over HTTP on loopback, keys it can rotate, and tokens it signs with them.
package idptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Key is a signing key of the issuer, published in its JWKS or not.
type Key struct {
	ID     string
	method jwt.SigningMethod
	signer crypto.Signer
}

// Issuer is a running issuer.
type Issuer struct {
	URL string

	mu        sync.Mutex
	published []*Key
	fetches   atomic.Int64
}

// Start runs an issuer until the test ends, publishing no key yet.
func Start(tb testing.TB) *Issuer {
	tb.Helper()
	i := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": i.URL, "jwks_uri": i.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		i.fetches.Add(1)
		i.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range i.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.signer.Public(), KeyID: k.ID, Algorithm: k.method.Alg(), Use: "sig"})
		}
		i.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	i.URL = srv.URL
	return i
}

// NewKey makes a key, RS256 or ES256 by alg; Publish puts it in the JWKS.
func NewKey(tb testing.TB, id, alg string) *Key {
	tb.Helper()
	var signer crypto.Signer
	var err error
	method := jwt.GetSigningMethod(alg)
	switch alg {
	case "RS256":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		tb.Fatalf("idptest: no keys for %s", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return &Key{ID: id, method: method, signer: signer}
}

// Publish makes keys the issuer's JWKS, in place of the keys published before.
func (i *Issuer) Publish(keys ...*Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = keys
}

// Fetches counts the requests for the JWKS.
func (i *Issuer) Fetches() int { return int(i.fetches.Load()) }

// Token signs claims with key, after the issuer's defaults: iss, aud audience, sub,
// iat now, exp in an hour (claims override them).
func (i *Issuer) Token(tb testing.TB, key *Key, audience, subject string, claims map[string]any) string {
	tb.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": i.URL, "aud": audience, "sub": subject, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	t := jwt.NewWithClaims(key.method, c)
	t.Header["kid"] = key.ID
	s, err := t.SignedString(key.signer)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
