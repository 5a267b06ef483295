package resolvers

import (
	"context"
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

	"github.com/homegoods/storefront/graph/model"
)

const tokenIssuer = "storefront"

// Principal is who makes a request.
type Principal struct {
	Role       model.Role
	CustomerID string
}

// claims are the fields of a storefront token.
type claims struct {
	Role model.Role `json:"role"`
	jwt.RegisteredClaims
}

// Auth signs and checks bearer tokens (HS256 JWTs with a role claim).
type Auth struct {
	secret []byte
	// provider, when set, accepts an external identity provider's tokens (AcceptProvider).
	provider *providerAuth
}

// NewAuth returns an Auth that signs with secret.
func NewAuth(secret []byte) *Auth {
	return &Auth{secret: secret}
}

// Token signs a token for role, valid for ttl. A customer token names its customer.
func (a *Auth) Token(role model.Role, customerID string, ttl time.Duration) (string, error) {
	if !role.IsValid() || role == model.RoleGuest {
		return "", fmt.Errorf("tokens are for customers and merchandisers, not %q", role)
	}
	if role == model.RoleCustomer && customerID == "" {
		return "", errors.New("a customer token needs a customer id")
	}
	now := time.Now()
	c := claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: tokenIssuer, Subject: customerID,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
}

// Parse checks a token's signature, issuer and expiry and returns its principal.
func (a *Auth) Parse(token string) (Principal, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(), jwt.WithLeeway(30*time.Second))
	if err != nil {
		return Principal{}, err
	}
	if c.Role != model.RoleCustomer && c.Role != model.RoleMerchandiser {
		return Principal{}, fmt.Errorf("unknown role %q", c.Role)
	}
	if c.Role == model.RoleCustomer && c.Subject == "" {
		return Principal{}, errors.New("customer token without a subject")
	}
	return Principal{Role: c.Role, CustomerID: c.Subject}, nil
}

// Middleware puts the caller's principal in the request context: a guest without an
// Authorization header. A bad or expired token is refused with 401, so that a client never
// mistakes itself for a guest.
func (a *Auth) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := Principal{Role: model.RoleGuest}
		if h := r.Header.Get("Authorization"); h != "" {
			var err error
			if p, err = a.parseBearer(r.Context(), h); err != nil {
				writeUnauthenticated(w)
				return
			}
		}
		ctx := withPrincipal(r.Context(), p)
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
		return a.provider.principal(ctx, token)
	}
	return a.Parse(token)
}

// websocketInit authenticates a websocket connection from the Authorization of its
// connection_init payload, which is where browsers put the token: they cannot set headers
// on a websocket. Without one the connection keeps the principal of its upgrade request. A
// bad token refuses the connection: graphql-transport-ws closes it with 4403, graphql-ws
// sends connection_error first.
func (a *Auth) websocketInit(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	h := payload.Authorization()
	if h == "" {
		return ctx, nil, nil
	}
	p, err := a.parseBearer(ctx, h)
	if err != nil {
		ctx = transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, 4403), "Forbidden")
		return ctx, nil, errors.New("invalid or expired token")
	}
	return withPrincipal(ctx, p), nil, nil
}

func writeUnauthenticated(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"message":    "invalid or expired token",
		"extensions": map[string]any{"code": string(model.CodeUnauthenticated)},
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
