package resolvers_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
)

// sessionAuth returns an Auth whose customers' tokens are sessions in a real Redis, under a
// prefix of the test's own, with its revocation list there too.
func sessionAuth(t *testing.T, opts resolvers.AuthOptions) *resolvers.Auth {
	t.Helper()
	rdb, prefix := cachetest.Client(t)
	return sessionAuthOn(t, rdb, prefix, opts)
}

// sessionAuthOn returns an Auth whose sessions and revocation list are in rdb under prefix.
func sessionAuthOn(t testing.TB, rdb redis.UniversalClient, prefix string, opts resolvers.AuthOptions) *resolvers.Auth {
	revocations := cache.NewRedisRevocations(rdb, prefix, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = revocations.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	opts.Sessions = cache.NewRedisSessions(rdb, prefix, cache.SessionConfig{})
	opts.Revocations = revocations
	return resolvers.NewAuth([]byte(testSecret), opts)
}

// customerTokenLifetimes makes customers' tokens live ttl at most, idle unused.
func customerTokenLifetimes(t *testing.T, ttl, idle time.Duration) apiOption {
	return func(c *resolvers.Config) {
		c.Auth = sessionAuth(t, resolvers.AuthOptions{CustomerTokenTTL: ttl, CustomerTokenIdle: idle})
	}
}

const meQuery = `{ me { email } }`

// signIn signs ann@example.com in again: another session.
func (s *shopAPI) signIn(pw string) string {
	s.t.Helper()
	data := s.ok("", signInMutation, map[string]any{"e": "ann@example.com", "p": pw})
	return dig(data, "customerSignIn", "accessToken").(string)
}

// mustWork fails unless token is accepted, for each name given.
func (s *shopAPI) mustWork(why string, tokens ...string) {
	s.t.Helper()
	for i, token := range tokens {
		if r := s.do(token, meQuery, nil); r.status != 200 || dig(r.Data, "me", "email") != "ann@example.com" {
			s.t.Fatalf("%s: token %d: got %d %+v; want ann's profile", why, i, r.status, r.Errors)
		}
	}
}

// mustBeRefused fails unless token is refused with 401 UNAUTHENTICATED.
func (s *shopAPI) mustBeRefused(why string, tokens ...string) {
	s.t.Helper()
	for i, token := range tokens {
		if r := s.do(token, meQuery, nil); r.status != 401 || r.code(s.t) != "UNAUTHENTICATED" {
			s.t.Fatalf("%s: token %d: got %d %+v; want 401 UNAUTHENTICATED", why, i, r.status, r.Errors)
		}
	}
}

// socket opens a graphql-transport-ws connection authenticated with token, acknowledged.
func (s *shopAPI) socket(token string) *websocket.Conn {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(s.srv.URL, "http")
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = c.CloseNow() })
	writeAll(ctx, s.t, c, wsMsg{"type": "connection_init", "payload": wsMsg{"Authorization": "Bearer " + token}})
	readUntil(ctx, s.t, c, "connection_ack")
	return c
}

// mustClose fails unless the server closes c with 4401 within 10 s.
func mustClose(t *testing.T, why string, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if got := readUntilClosed(ctx, c); got != 4401 {
		t.Errorf("%s: socket closed with %d; want 4401", why, got)
	}
}

// signOut ends this session only: its token is refused, its socket closes, the customer's
// other session goes on; a guest has nothing to sign out of.
func TestSignOutEndsTheSession(t *testing.T) {
	s := newShopAPI(t)
	first := s.register("ann@example.com", "correct horse battery", "Ann")
	second := s.signIn("correct horse battery")
	s.mustWork("signed in", first, second)
	socket := s.socket(first)

	if got := dig(s.ok(first, `mutation { signOut }`, nil), "signOut"); got != true {
		t.Fatalf("signOut: got %v; want true", got)
	}
	s.mustBeRefused("after signOut", first)
	mustClose(t, "the signed-out session's socket", socket)
	s.mustWork("the other session after signOut", second)
	if r := s.do(first, `mutation { signOut }`, nil); r.status != 401 {
		t.Errorf("signOut again: got %d; want 401", r.status)
	}
}

// customerSignOutEverywhere ends every session of the customer, and their open sockets,
// and no other customer's.
func TestSignOutEverywhere(t *testing.T) {
	s := newShopAPI(t)
	first := s.register("ann@example.com", "correct horse battery", "Ann")
	second := s.signIn("correct horse battery")
	other := s.register("bob@example.com", "correct horse battery", "Bob")
	sockets := []*websocket.Conn{s.socket(first), s.socket(second)}

	if got := dig(s.ok(second, `mutation { customerSignOutEverywhere }`, nil), "customerSignOutEverywhere"); got != true {
		t.Fatalf("customerSignOutEverywhere: got %v; want true", got)
	}
	s.mustBeRefused("after signing out everywhere", first, second)
	for _, c := range sockets {
		mustClose(t, "a socket of a session ended everywhere", c)
	}
	if r := s.do(other, `{ me { email } }`, nil); r.status != 200 || dig(r.Data, "me", "email") != "bob@example.com" {
		t.Errorf("another customer's session: got %d %+v; want it untouched", r.status, r.Errors)
	}
	if r := s.do("", `mutation { customerSignOutEverywhere }`, nil); r.code(t) != "UNAUTHENTICATED" {
		t.Errorf("as a guest: got %+v; want UNAUTHENTICATED", r.Errors)
	}
	s.mustWork("signing in again", s.signIn("correct horse battery"))
}

// Changing the password ends the customer's other sessions and keeps this one; a reset ends
// them all, also the one that asked for it.
func TestPasswordChangesEndSessions(t *testing.T) {
	s := newShopAPI(t)
	this := s.register("ann@example.com", "correct horse battery", "Ann")
	other := s.signIn("correct horse battery")
	socket := s.socket(other)
	change := `mutation($c: String!, $n: String!) { customerChangePassword(currentPassword: $c, newPassword: $n) }`
	if r := s.do(this, change, map[string]any{"c": "wrong password!", "n": "battery staple horse"}); r.code(t) != "UNAUTHENTICATED" {
		t.Fatalf("a wrong current password: got %+v", r.Errors)
	}
	s.mustWork("after a refused change", this, other)

	s.ok(this, change, map[string]any{"c": "correct horse battery", "n": "battery staple horse"})
	s.mustWork("this session after the change", this)
	s.mustBeRefused("the other session after the change", other)
	mustClose(t, "the other session's socket", socket)

	later := s.signIn("battery staple horse")
	s.ok(this, `mutation($e: String!) { customerRequestPasswordReset(email: $e) }`, map[string]any{"e": "ann@example.com"})
	token := s.mailed("ann@example.com", "Reset your password")
	s.ok("", `mutation($t: String!, $p: String!) { customerResetPassword(token: $t, newPassword: $p) }`,
		map[string]any{"t": token, "p": "staple horse battery"})
	s.mustBeRefused("after a reset", this, later)
	s.mustWork("signing in with the new password", s.signIn("staple horse battery"))
}

// A token slides: used before its idle timeout it keeps working past that, until its end
// however much it is used; unused, it expires after the idle timeout.
func TestCustomerTokensSlide(t *testing.T) {
	const idle, ttl = 2 * time.Second, 5 * time.Second
	s := newShopAPI(t, customerTokenLifetimes(t, ttl, idle))
	signedIn := time.Now()
	data := s.ok("", registerMutation, map[string]any{"in": map[string]any{"email": "ann@example.com", "password": "correct horse battery", "name": "Ann"}})
	used := dig(data, "customerRegister", "accessToken").(string)
	expires, err := time.Parse(time.RFC3339Nano, dig(data, "customerRegister", "expiresAt").(string))
	if err != nil || expires.Before(signedIn.Add(idle-time.Second)) || expires.After(time.Now().Add(idle+time.Second)) {
		t.Errorf("expiresAt %v (%v); want about %v after sign-in", expires, err, idle)
	}
	unused := s.signIn("correct horse battery")

	var lastWorked, refused time.Time
	for refused.IsZero() && time.Since(signedIn) < ttl+10*time.Second {
		time.Sleep(idle / 5)
		if r := s.do(used, meQuery, nil); r.status == 200 {
			lastWorked = time.Now()
		} else {
			refused = time.Now()
		}
	}
	if lastWorked.Sub(signedIn) < idle+idle/2 {
		t.Errorf("a token used every %v worked until %v after sign-in; want past its idle timeout %v", idle/5, lastWorked.Sub(signedIn), idle)
	}
	if refused.IsZero() || refused.Sub(signedIn) < ttl-time.Second {
		t.Errorf("a token used all along was refused %v after sign-in; want at its end, %v", refused.Sub(signedIn), ttl)
	}
	s.mustBeRefused("a token unused for longer than its idle timeout", unused)
}

// A token naming a session that never existed, or one whose session expired, is refused
// with UNAUTHENTICATED and changes nothing.
func TestUnknownSessionsAreRefused(t *testing.T) {
	s := newShopAPI(t)
	token := s.register("ann@example.com", "correct horse battery", "Ann")
	p, err := s.auth.Parse(token)
	if err != nil {
		t.Fatal(err)
	}
	sid := make([]byte, 32)
	_, _ = rand.Read(sid)
	now := time.Now()
	claims := func(sid string) jwt.MapClaims {
		return jwt.MapClaims{"iss": "storefront", "role": "CUSTOMER", "sub": p.CustomerID, "jti": "forged-1",
			"sid": sid, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	}
	for name, forged := range map[string]string{
		"an unknown session":       forge(t, claims(base64.RawURLEncoding.EncodeToString(sid))),
		"a malformed session id":   forge(t, claims("not a session")),
		"another customer's claim": forge(t, jwt.MapClaims{"iss": "storefront", "role": "CUSTOMER", "sub": "00000000-0000-0000-0000-000000000001", "jti": "forged-2", "sid": p.SessionID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}),
	} {
		if r := s.do(forged, `mutation { customerUpdate(input: {name: "Mallory"}) { name } }`, nil); r.status != 401 || r.code(t) != "UNAUTHENTICATED" {
			t.Errorf("%s: got %d %+v; want 401 UNAUTHENTICATED", name, r.status, r.Errors)
		}
	}
	if got := s.text(`SELECT name FROM customers WHERE id = $1`, p.CustomerID); got != "Ann" {
		t.Errorf("name after refused updates: %q; want Ann", got)
	}
	s.mustWork("the real session", token)
}

// While the session store cannot be reached, a customer's request is answered 503
// UNAVAILABLE, to be retried, rather than 401, which would sign the customer out; a store
// that comes back empty has lost the sessions, and their tokens are refused.
func TestSessionStoreDownIsUnavailable(t *testing.T) {
	srv := cachetest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s := newShopAPI(t, func(c *resolvers.Config) { c.Auth = sessionAuthOn(t, rdb, "down:", resolvers.AuthOptions{}) })
	token := s.register("ann@example.com", "correct horse battery", "Ann")
	s.mustWork("signed in", token)

	srv.Stop()
	r := s.do(token, meQuery, nil)
	for deadline := time.Now().Add(10 * time.Second); r.status == 200 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // the instance believes what it found a moment ago
		r = s.do(token, meQuery, nil)
	}
	if r.status != 503 || r.code(t) != "UNAVAILABLE" {
		t.Errorf("with the session store down: got %d %+v; want 503 UNAVAILABLE", r.status, r.Errors)
	}
	srv.Start()
	s.mustBeRefused("after the store came back empty", token)
}

// BenchmarkBearerCheck measures a { __typename } request through the handler as a guest, with
// a token checked in memory only (a merchandiser's), and with a customer's access token: its
// session checked a moment ago (remembered), and at its first use on the instance, which
// costs the round trip to Redis.
func BenchmarkBearerCheck(b *testing.B) {
	rdb, prefix := cachetest.Client(b)
	sessions := cache.NewRedisSessions(rdb, prefix, cache.SessionConfig{})
	cfg := resolvers.Config{Auth: sessionAuthOn(b, rdb, prefix, resolvers.AuthOptions{}), Log: slog.New(slog.DiscardHandler),
		Catalog: store.New(dbtest.New(b)), ComplexityLimit: 1000, DepthLimit: 12}
	srv := httptest.NewServer(resolvers.NewHandler(cfg))
	b.Cleanup(srv.Close)
	now := time.Now()
	claims := jwt.MapClaims{"iss": "storefront", "jti": "bench", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "role": "MERCHANDISER"}
	merchandiser := forge(b, claims)
	session := func() string {
		s, err := sessions.CreateBounded(b.Context(), "customer-1", time.Hour, now.Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		claims["role"], claims["sub"], claims["sid"] = "CUSTOMER", "customer-1", s.ID
		return forge(b, claims)
	}
	remembered := session()
	cases := map[string]func() string{
		"guest": func() string { return "" }, "token": func() string { return merchandiser },
		"session": func() string { return remembered },
		"session-first-use": func() string {
			b.StopTimer()
			defer b.StartTimer()
			return session()
		},
	}
	for _, name := range []string{"guest", "token", "session", "session-first-use"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				benchRequest(b, srv, cases[name]())
			}
		})
	}
}

// benchRequest posts { __typename } with token ("" for none) and fails unless it is answered.
func benchRequest(b *testing.B, srv *httptest.Server, token string) {
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"query":"{ __typename }"}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if body, _ := io.ReadAll(res.Body); res.StatusCode != 200 {
		b.Fatalf("%s: %s", res.Status, body)
	}
}
