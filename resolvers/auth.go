package resolvers

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/homegoods/storefront/graph/model"
)

const (
	tokenIssuer = "storefront"
	// tokenLeeway allows for the clocks of issuers and servers being a little apart.
	tokenLeeway = 5 * time.Second
	// DefaultMaxTokenTTL is the longest a token may live, from issue to expiry, unless
	// AuthOptions say otherwise.
	DefaultMaxTokenTTL = 24 * time.Hour
)

// Principal is who makes a request.
type Principal struct {
	Role       model.Role
	CustomerID string
	// TokenID and Expires are those of the bearer token; empty for guests (TokenID also for
	// an identity provider's token without a jti).
	TokenID string
	Expires time.Time
	// SessionID names the session behind a customer's access token (see CustomerSessions);
	// empty for other tokens.
	SessionID string
}

// claims are the fields of a storefront token.
type claims struct {
	Role model.Role `json:"role"`
	// SessionID is set in the tokens of customers' sessions.
	SessionID string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// Revocations is the list of revoked tokens, by id, shared by every server instance.
// Revoked and Changed answer from memory: they are asked on every request.
type Revocations interface {
	Revoke(ctx context.Context, id string, until time.Time) error
	Revoked(id string) bool
	// Changed returns a channel closed when the list next gains an id.
	Changed() <-chan struct{}
}

// AuthOptions configure an Auth.
type AuthOptions struct {
	// MaxTTL is the longest a token may live from its issue to its expiry: tokens signed
	// for longer are refused (DefaultMaxTokenTTL when 0).
	MaxTTL time.Duration
	// Revocations is the list of revoked tokens; nil revokes none.
	Revocations Revocations
	// Sessions keep the sessions behind customers' access tokens; nil starts none.
	Sessions CustomerSessions
	// CustomerTokenTTL is the longest a customer's access token lives, however much it is
	// used (DefaultCustomerTokenTTL when 0); CustomerTokenIdle ends it sooner when it goes
	// unused that long (DefaultCustomerTokenIdle when 0, at most CustomerTokenTTL).
	CustomerTokenTTL, CustomerTokenIdle time.Duration
}

// Auth signs and checks bearer tokens (HS256 JWTs with a role claim and an id), and ends
// what a token opened once it expires or is revoked.
type Auth struct {
	secret  []byte
	maxTTL  time.Duration
	revoked Revocations
	// sessions and the lifetimes of customers' sessions, see startSession.
	sessions                  CustomerSessions
	customerTTL, customerIdle time.Duration
	// checked are the sessions found alive lately, believed for checkTTL (checkSession).
	checked  *lru.Cache[string, sessionCheck]
	checkTTL time.Duration
	// provider, when set, accepts an external identity provider's tokens (AcceptProvider).
	provider *providerAuth
}

// NewAuth returns an Auth that signs with secret.
func NewAuth(secret []byte, opts AuthOptions) *Auth {
	a := &Auth{secret: secret, maxTTL: cmp.Or(opts.MaxTTL, DefaultMaxTokenTTL), revoked: opts.Revocations,
		sessions: opts.Sessions, customerTTL: cmp.Or(opts.CustomerTokenTTL, DefaultCustomerTokenTTL)}
	a.customerIdle = min(cmp.Or(opts.CustomerTokenIdle, DefaultCustomerTokenIdle), a.customerTTL)
	a.checked, a.checkTTL = newSessionChecks(), min(sessionCheckTTL, a.customerIdle/4)
	if a.revoked == nil {
		a.revoked = noRevocations{}
	}
	if a.sessions == nil {
		a.sessions = noSessions{}
	}
	return a
}

// Token signs a token for role, valid for ttl (at most the maximum lifetime), with a random
// id by which it can be revoked. A customer token names its customer.
func (a *Auth) Token(role model.Role, customerID string, ttl time.Duration) (string, error) {
	if !role.IsValid() || role == model.RoleGuest {
		return "", fmt.Errorf("tokens are for customers and merchandisers, not %q", role)
	}
	if role == model.RoleCustomer && customerID == "" {
		return "", errors.New("a customer token needs a customer id")
	}
	if ttl > a.maxTTL {
		return "", fmt.Errorf("a token may live %s at most, not %s", a.maxTTL, ttl)
	}
	now := time.Now()
	return a.sign(claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: customerID, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}})
}

func (a *Auth) sign(c claims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

// Parse checks a token's signature, issuer, lifetime and revocation and returns its
// principal.
func (a *Auth) Parse(token string) (Principal, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(tokenLeeway))
	if err != nil {
		return Principal{}, err
	}
	switch {
	case c.IssuedAt == nil:
		return Principal{}, errors.New("token without an issue time")
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > a.maxTTL:
		return Principal{}, fmt.Errorf("token lives longer than %s", a.maxTTL)
	case c.ID == "":
		return Principal{}, errors.New("token without an id")
	case a.revoked.Revoked(c.ID) || c.SessionID != "" && a.revoked.Revoked(c.SessionID):
		return Principal{}, errors.New("revoked token")
	case c.Role != model.RoleCustomer && c.Role != model.RoleMerchandiser:
		return Principal{}, fmt.Errorf("unknown role %q", c.Role)
	case c.Role == model.RoleCustomer && c.Subject == "":
		return Principal{}, errors.New("customer token without a subject")
	case c.SessionID != "" && c.Role != model.RoleCustomer:
		return Principal{}, errors.New("a session of a role other than customer")
	}
	return Principal{Role: c.Role, CustomerID: c.Subject, TokenID: c.ID, Expires: c.ExpiresAt.Time, SessionID: c.SessionID}, nil
}

// Revoke revokes the token id on every server instance: it is refused from now on, and what
// it opened ends. The id is kept until any token could have expired.
func (a *Auth) Revoke(ctx context.Context, id string) error {
	return a.revoked.Revoke(ctx, id, time.Now().Add(a.maxTTL+tokenLeeway))
}

// signOut revokes p's own token, until it would have expired; for a customer's access
// token, its session, which it also ends.
func (a *Auth) signOut(ctx context.Context, p Principal) error {
	if p.SessionID == "" {
		return a.revoked.Revoke(ctx, p.TokenID, p.Expires.Add(tokenLeeway))
	}
	if err := a.revoked.Revoke(ctx, p.SessionID, p.Expires.Add(tokenLeeway)); err != nil {
		return err
	}
	return a.sessions.Delete(ctx, p.SessionID)
}

// maxTokenID bounds the ids revokeToken takes: those of Token are 26 characters.
const maxTokenID = 64

// holds reports whether p's token is still good: not expired, not revoked. A guest's
// principal always holds.
func (a *Auth) holds(p Principal) bool {
	return p.Expires.IsZero() || time.Now().Before(p.Expires.Add(tokenLeeway)) && !a.revoked.Revoked(p.TokenID) &&
		(p.SessionID == "" || !a.revoked.Revoked(p.SessionID))
}

// noRevocations is the list of a server that revokes nothing.
type noRevocations struct{}

func (noRevocations) Revoke(context.Context, string, time.Time) error {
	return errors.New("this server keeps no revocation list")
}
func (noRevocations) Revoked(string) bool      { return false }
func (noRevocations) Changed() <-chan struct{} { return nil }

// Middleware puts the caller's principal in the request context: a guest without an
// Authorization header. A bad or expired token is refused with 401, so that a client never
// mistakes itself for a guest.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := Principal{Role: model.RoleGuest}
		if h := r.Header.Get("Authorization"); h != "" {
			var err error
			if p, err = a.parseBearer(r.Context(), h); errors.Is(err, errSessionStore) {
				writeRefusal(w, http.StatusServiceUnavailable, model.CodeUnavailable, "the session could not be checked: retry shortly")
				return
			} else if err != nil {
				writeRefusal(w, http.StatusUnauthorized, model.CodeUnauthenticated, "invalid or expired token")
				return
			}
		}
		ctx := withPrincipal(r.Context(), p)
		if !p.Expires.IsZero() && (transport.SSE{}).Supports(r) {
			var stop context.CancelFunc
			ctx, stop = a.endWithToken(ctx, p)
			defer stop()
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, remoteAddrKey{}, r.RemoteAddr)))
	})
}

// parseBearer returns the principal of an Authorization value, "Bearer <token>": a token
// of the identity provider when one is accepted and the token claims to be its, else one
// of this server's.
func (a *Auth) parseBearer(ctx context.Context, h string) (Principal, error) {
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return Principal{}, errors.New("not a bearer token")
	}
	token = strings.TrimSpace(token)
	if a.provider != nil && a.provider.provider.Mine(token) {
		p, err := a.provider.principal(ctx, token)
		if err == nil && p.TokenID != "" && a.revoked.Revoked(p.TokenID) {
			return Principal{}, errors.New("revoked token")
		}
		return p, err
	}
	p, err := a.Parse(token)
	if err == nil && p.SessionID != "" {
		err = a.checkSession(ctx, p)
	}
	return p, err
}

// websocketInit authenticates a websocket connection from the Authorization of its
// connection_init payload, which is where browsers put the token: they cannot set headers
// on a websocket. Without one the connection keeps the principal of its upgrade request. A
// bad token refuses the connection: graphql-transport-ws closes it with 4403, graphql-ws
// sends connection_error first. A good one is watched: the socket closes with 4401
// (Unauthorized) when it expires or is revoked, and a subscription started after that,
// before the close is seen, closes it too (see protocolConn).
func (a *Auth) websocketInit(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	p := PrincipalFrom(ctx)
	if h := payload.Authorization(); h != "" {
		var err error
		if p, err = a.parseBearer(ctx, h); err != nil {
			ctx = transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, 4403), "Forbidden")
			return ctx, nil, errors.New("invalid or expired token")
		}
	}
	if conn := socketOf(ctx); conn != nil && !p.Expires.IsZero() {
		conn.requireToken(func() bool { return a.holds(p) })
		go a.watch(ctx, p, func() { conn.violate(closeUnauthorized, "Unauthorized") })
	}
	return withPrincipal(ctx, p), nil, nil
}

// writeRefusal answers a request whose token was not accepted.
func writeRefusal(w http.ResponseWriter, status int, code model.ErrorCode, message string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	} else {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message": message, "extensions": map[string]any{"code": string(code)},
	}}})
}

type principalKey struct{}

type remoteAddrKey struct{}

// ClientKey names the caller of the request in ctx for rate limits: the customer of a
// token, or else the address the request came from (behind trusted proxies, the server has
// already put the client's address from X-Forwarded-For there).
func ClientKey(ctx context.Context) string {
	if p := PrincipalFrom(ctx); p.CustomerID != "" {
		return "customer:" + p.CustomerID
	}
	addr, _ := ctx.Value(remoteAddrKey{}).(string)
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return "ip:" + addr
}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller of the request in ctx (a guest when there is none).
func PrincipalFrom(ctx context.Context) Principal {
	if p, ok := ctx.Value(principalKey{}).(Principal); ok {
		return p
	}
	return Principal{Role: model.RoleGuest}
}

func isMerchandiser(ctx context.Context) bool {
	return PrincipalFrom(ctx).Role == model.RoleMerchandiser
}

// hasRole implements the @hasRole directive.
func hasRole(ctx context.Context, _ any, next graphql.Resolver, role model.Role) (any, error) {
	if err := requireRole(ctx, role); err != nil {
		return nil, err
	}
	return next(ctx)
}

// requireRole refuses callers without role: UNAUTHENTICATED for guests, FORBIDDEN for others.
func requireRole(ctx context.Context, role model.Role) error {
	switch p := PrincipalFrom(ctx); {
	case p.Role == role:
		return nil
	case p.Role == model.RoleGuest:
		return model.Errorf(model.CodeUnauthenticated, "sign in as a %s to use this field", strings.ToLower(string(role)))
	default:
		return model.Errorf(model.CodeForbidden, "this field is for the %s role", strings.ToLower(string(role)))
	}
}
