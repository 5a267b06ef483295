// Package idp accepts the bearer tokens of an external OpenID Connect identity provider: JWTs
// signed by the provider (RS256 or ES256) with a key of its JWKS, for this API's audience.
// The keys are fetched once and kept; a token that no kept key verifies fetches them again
// (the provider may have rotated its keys), at most once per RefetchEvery, so that tokens of
// made-up keys cannot make the server hammer the provider.
package idp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Options configure a Verifier.
type Options struct {
	// Issuer is the provider's issuer URL, exactly as its tokens' iss claim says.
	Issuer string
	// Audience is this API's identifier at the provider: tokens must name it in aud.
	Audience string
	// JWKSURL is where the provider publishes its keys; empty: found through the issuer's
	// discovery document (/.well-known/openid-configuration), read at start.
	JWKSURL string
	// RoleClaim names the claim that carries the caller's roles or groups (a dotted path
	// for nested claims, such as realm_access.roles); a caller whose claim is, or contains,
	// MerchandiserRole is a merchandiser. Empty: nobody is.
	RoleClaim, MerchandiserRole string
	// RefetchEvery bounds how often a token of an unknown key id fetches the keys again
	// (default 10s).
	RefetchEvery time.Duration
	// HTTPClient fetches the discovery document and the keys (default: a client with a 10s
	// timeout).
	HTTPClient *http.Client
}

// Identity is who a provider's token names.
type Identity struct {
	Issuer, Subject string
	// Email is set when the provider says it verified it.
	Email        *string
	Name         string
	Merchandiser bool
	// TokenID is the token's jti ("" without one) and Expires its expiry.
	TokenID string
	Expires time.Time
}

// Verifier checks the provider's tokens.
type Verifier struct {
	opts     Options
	verifier *oidc.IDTokenVerifier
}

// New returns a verifier of the provider's tokens. Without a JWKSURL it reads the provider's
// discovery document first.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	if opts.Issuer == "" || opts.Audience == "" {
		return nil, errors.New("idp: an issuer and an audience are required")
	}
	if opts.RefetchEvery <= 0 {
		opts.RefetchEvery = 10 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	ctx = oidc.ClientContext(ctx, opts.HTTPClient)
	if opts.JWKSURL == "" {
		p, err := oidc.NewProvider(ctx, opts.Issuer)
		if err != nil {
			return nil, fmt.Errorf("idp: discovery: %w", err)
		}
		var doc struct {
			JWKSURL string `json:"jwks_uri"`
		}
		if err := p.Claims(&doc); err != nil || doc.JWKSURL == "" {
			return nil, fmt.Errorf("idp: the discovery document names no jwks_uri (%v)", err)
		}
		opts.JWKSURL = doc.JWKSURL
	}
	// The key set fetches with a context of its own, which must outlive this call.
	transport := opts.HTTPClient.Transport
	if transport == nil {
		transport = http.DefaultTransport
	}
	fetch := &http.Client{Timeout: opts.HTTPClient.Timeout, Transport: &throttled{next: transport, every: opts.RefetchEvery}}
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), fetch), opts.JWKSURL)
	v := oidc.NewVerifier(opts.Issuer, keys, &oidc.Config{ClientID: opts.Audience,
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256}})
	return &Verifier{opts: opts, verifier: v}, nil
}

// Issuer is the provider's issuer URL.
func (v *Verifier) Issuer() string { return v.opts.Issuer }

// Mine reports whether a JWT claims to come from the provider (its iss, unverified): such a
// token is checked by Verify, any other by the server's own keys.
func (v *Verifier) Mine(raw string) bool {
	var c struct {
		Issuer string `json:"iss"`
	}
	return decodeSegment(raw, 1, &c) == nil && c.Issuer == v.opts.Issuer
}

// Verify checks a token's signature, issuer, audience and expiry and returns its identity.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	tok, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		return Identity{}, err
	}
	var c map[string]any
	if err := tok.Claims(&c); err != nil {
		return Identity{}, err
	}
	id := Identity{Issuer: tok.Issuer, Subject: tok.Subject, Expires: tok.Expiry}
	if id.Subject == "" {
		return Identity{}, errors.New("idp: token without a subject")
	}
	id.TokenID, _ = c["jti"].(string)
	if email, ok := c["email"].(string); ok && c["email_verified"] == true {
		email = strings.ToLower(email)
		id.Email = &email
	}
	for _, k := range []string{"name", "preferred_username", "given_name"} {
		if name, ok := c[k].(string); ok && strings.TrimSpace(name) != "" {
			id.Name = strings.TrimSpace(name)
			break
		}
	}
	if id.Name == "" {
		id.Name = "Customer"
	}
	id.Merchandiser = v.opts.RoleClaim != "" && hasRole(lookup(c, v.opts.RoleClaim), v.opts.MerchandiserRole)
	return id, nil
}

// lookup follows a dotted path through nested claims.
func lookup(claims map[string]any, path string) any {
	var cur any = claims
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// hasRole reports whether a claim is role, or a list holding it.
func hasRole(claim any, role string) bool {
	switch c := claim.(type) {
	case string:
		return c == role
	case []any:
		for _, r := range c {
			if r == role {
				return true
			}
		}
	}
	return false
}

// decodeSegment decodes the JSON of one dot-separated segment of a JWT (0: the header, 1:
// the claims), without checking anything.
func decodeSegment(raw string, i int, v any) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// throttled lets a request through at most once per interval and refuses the others at
// once: the key set fetches again for every token whose key it has not cached, and such
// tokens cost nothing to make up.
type throttled struct {
	next  http.RoundTripper
	every time.Duration

	mu   sync.Mutex
	last time.Time
}

func (t *throttled) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	if !t.last.IsZero() && time.Since(t.last) < t.every {
		t.mu.Unlock()
		return nil, fmt.Errorf("idp: keys fetched less than %s ago: a token of an unknown key", t.every)
	}
	t.last = time.Now()
	t.mu.Unlock()
	return t.next.RoundTrip(req)
}
