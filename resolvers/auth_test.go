package resolvers_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/golang-jwt/jwt/v5"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
)

// forge signs claims with the test secret, as anyone holding the secret could: the server
// must still refuse what its own rules forbid.
func forge(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A token lives at most the maximum lifetime from its issue: longer ones are neither signed
// nor accepted, and one without an issue time or an id (which revocation needs) is refused.
func TestTokenLifetimeIsBounded(t *testing.T) {
	a := newAPI(t, 1, func(c *resolvers.Config) {
		c.Auth = resolvers.NewAuth([]byte(testSecret), resolvers.AuthOptions{MaxTTL: time.Hour})
	})
	if _, err := a.auth.Token(model.RoleMerchandiser, "", 2*time.Hour); err == nil {
		t.Error("Token with a lifetime of 2h under a maximum of 1h: got a token; want an error")
	}
	now := time.Now()
	good := jwt.MapClaims{"iss": "storefront", "role": "MERCHANDISER", "jti": "a1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	with := func(key string, value any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range good {
			c[k] = v
		}
		if value == nil {
			delete(c, key)
		} else {
			c[key] = value
		}
		return c
	}
	if r := a.do(forge(t, good), `{ products(first: 1) { totalCount } }`, nil); r.status != 200 || len(r.Errors) > 0 {
		t.Fatalf("a token within the rules: got %d %+v; want it accepted", r.status, r.Errors)
	}
	cases := map[string]jwt.MapClaims{
		"a year long":         with("exp", now.Add(365*24*time.Hour).Unix()),
		"issued in the past":  with("iat", now.Add(-30*24*time.Hour).Unix()),
		"issued in future":    with("iat", now.Add(time.Hour).Unix()),
		"no issue time":       with("iat", nil),
		"no expiry":           with("exp", nil),
		"no id":               with("jti", nil),
		"expired a while ago": with("exp", now.Add(-time.Minute).Unix()),
	}
	for name, c := range cases {
		if r := a.do(forge(t, c), `{ products(first: 1) { totalCount } }`, nil); r.status != 401 || r.code(t) != "UNAUTHENTICATED" {
			t.Errorf("%s: got %d %+v; want 401 UNAUTHENTICATED", name, r.status, r.Errors)
		}
	}
}

// A revoked token is refused from the next request: by its id (revokeToken, merchandisers
// only) or by its bearer (signOut).
func TestRevokedTokensAreRefused(t *testing.T) {
	a := newAPI(t, 1, func(c *resolvers.Config) {
		c.Auth = resolvers.NewAuth([]byte(testSecret), resolvers.AuthOptions{Revocations: cache.NewMemoryRevocations()})
	})
	admin, leaked := a.merchandiser(), a.merchandiser()
	customer := a.token(model.RoleCustomer, "00000000-0000-0000-0000-000000000001")
	p, err := a.auth.Parse(leaked)
	if err != nil {
		t.Fatal(err)
	}
	const whoami = `{ products(first: 1) { totalCount } }`

	if code := a.do(customer, `mutation($id: String!) { revokeToken(id: $id) }`, map[string]any{"id": p.TokenID}).code(t); code != "FORBIDDEN" {
		t.Errorf("revokeToken by a customer: got %s; want FORBIDDEN", code)
	}
	if r := a.do(leaked, whoami, nil); r.status != 200 {
		t.Fatalf("before revocation: got %d; want 200", r.status)
	}
	a.ok(admin, `mutation($id: String!) { revokeToken(id: $id) }`, map[string]any{"id": p.TokenID})
	if r := a.do(leaked, whoami, nil); r.status != 401 || r.code(t) != "UNAUTHENTICATED" {
		t.Errorf("after revokeToken: got %d %+v; want 401 UNAUTHENTICATED", r.status, r.Errors)
	}
	if code := a.do(admin, `mutation { revokeToken(id: "") }`, nil).code(t); code != "BAD_USER_INPUT" {
		t.Errorf("revokeToken of an empty id: got %s; want BAD_USER_INPUT", code)
	}

	a.ok(customer, `mutation { signOut }`, nil)
	if r := a.do(customer, whoami, nil); r.status != 401 {
		t.Errorf("after signOut: got %d; want 401", r.status)
	}
	if r := a.do(admin, whoami, nil); r.status != 200 {
		t.Errorf("another token after signOut: got %d; want 200 (only the signed-out token ends)", r.status)
	}
	if code := a.do("", `mutation { signOut }`, nil).code(t); code != "UNAUTHENTICATED" {
		t.Errorf("signOut as a guest: got %s; want UNAUTHENTICATED", code)
	}
}

// quietRevocations is a revocation list whose changes wake nobody, as when an instance has
// read a revocation but an open socket's watcher has not yet run: the checks made when an
// operation starts must refuse the token by themselves.
type quietRevocations struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (q *quietRevocations) Revoke(_ context.Context, id string, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ids[id] = true
	return nil
}

func (q *quietRevocations) Revoked(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ids[id]
}

func (q *quietRevocations) Changed() <-chan struct{} { return nil }

// A socket opened with a token checks it again for every operation it starts: after the
// token is revoked, a new subscription closes the socket with 4401 Unauthorized, also in the
// legacy protocol (after its connection_error), before any watcher noticed.
func TestOperationsOnAnOpenSocketAreCheckedAgain(t *testing.T) {
	auth := resolvers.NewAuth([]byte(testSecret), resolvers.AuthOptions{Revocations: &quietRevocations{ids: map[string]bool{}}})
	url, _ := alertsServer(t, func(c *resolvers.Config) { c.Auth = auth })
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		token, err := auth.Token(model.RoleMerchandiser, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := auth.Parse(token)
		start := map[string]string{"graphql-transport-ws": "subscribe", "graphql-ws": "start"}[protocol]
		sub := func(id string) wsMsg {
			return wsMsg{"type": start, "id": id, "payload": wsMsg{"query": "subscription { inventoryAlerts { kind } }"}}
		}
		init := wsMsg{"type": "connection_init", "payload": wsMsg{"Authorization": "Bearer " + token}}

		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{protocol}})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(ctx, t, c, init, sub("1"))
		readUntil(ctx, t, c, "connection_ack")
		if err := auth.Revoke(ctx, p.TokenID); err != nil {
			t.Fatal(err)
		}
		writeAll(ctx, t, c, sub("2"))
		if got := readUntilClosed(ctx, c); got != 4401 {
			t.Errorf("%s: a subscription after revocation: closed with %d; want 4401", protocol, got)
		}
		cancel()
		_ = c.CloseNow()
	}
}

// A socket and a stream of server-sent events end when their token expires: the socket
// closes with 4401, the stream's last event is UNAUTHENTICATED.
func TestSubscriptionsEndWhenTheirTokenExpires(t *testing.T) {
	auth := resolvers.NewAuth([]byte(testSecret), resolvers.AuthOptions{})
	url, _ := alertsServer(t, func(c *resolvers.Config) { c.Auth = auth })
	token, err := auth.Token(model.RoleMerchandiser, "", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	writeAll(ctx, t, c, wsMsg{"type": "connection_init", "payload": wsMsg{"Authorization": "Bearer " + token}},
		wsMsg{"type": "subscribe", "id": "1", "payload": wsMsg{"query": "subscription { inventoryAlerts { kind } }"}})
	events := sseSubscribe(t, "http"+url[len("ws"):], token, `subscription { inventoryAlerts { kind } }`)

	if got := readUntilClosed(ctx, c); got != 4401 {
		t.Errorf("websocket: closed with %d; want 4401 when its token expired", got)
	}
	var last string
	for e := range events {
		last = e
	}
	if want := `"code":"UNAUTHENTICATED"`; !strings.Contains(last, want) {
		t.Errorf("SSE: last event %s; want an error with %s", last, want)
	}
}

func writeAll(ctx context.Context, t *testing.T, c *websocket.Conn, messages ...wsMsg) {
	t.Helper()
	for _, m := range messages {
		if err := wsjson.Write(ctx, c, m); err != nil {
			t.Fatal(err)
		}
	}
}

// readUntil reads messages until one of type typ.
func readUntil(ctx context.Context, t *testing.T, c *websocket.Conn, typ string) {
	t.Helper()
	for {
		var m struct{ Type string }
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m.Type == typ {
			return
		}
	}
}

// readUntilClosed reads until the server closes the socket and returns its close code (-1
// if ctx ended first).
func readUntilClosed(ctx context.Context, c *websocket.Conn) websocket.StatusCode {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}
