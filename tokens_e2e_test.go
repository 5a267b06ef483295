package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/homegoods/storefront/cache/cachetest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
)

// publicDevSecret is the development secret that server.go used to fall back on: anyone
// could read it and sign a merchandiser token with it.
const publicDevSecret = "storefront-development-secret-do-not-use-in-production"

// There is no default secret: without JWT_SECRET a server with the playground off refuses to
// start and storefront token refuses to sign, and a development server (playground on)
// accepts no token signed with the formerly public default.
func TestJWTSecretHasNoPublicDefault(t *testing.T) {
	env := newTestEnv(t)
	delete(env, "JWT_SECRET")

	production := testEnv{"PLAYGROUND": "false"}
	for k, v := range env {
		production[k] = v
	}
	err := run(context.Background(), []string{"serve"}, production.get, io.Discard, io.Discard)
	if !errors.Is(err, errNoJWTSecret) {
		t.Errorf("serve with PLAYGROUND=false and no JWT_SECRET: got %v; want %v", err, errNoJWTSecret)
	}
	err = run(context.Background(), []string{"token", "--role", "merchandiser"}, env.get, io.Discard, io.Discard)
	if !errors.Is(err, errNoJWTSecret) {
		t.Errorf("token without JWT_SECRET: got %v; want %v", err, errNoJWTSecret)
	}

	base, _ := startServer(t, env)
	forged, err := resolvers.NewAuth([]byte(publicDevSecret), resolvers.AuthOptions{}).Token(model.RoleMerchandiser, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, base+"/graphql", forged, `{"query":"{ __typename }"}`); status != 401 || !strings.Contains(body, "UNAUTHENTICATED") {
		t.Errorf("a token signed with the public development secret: got %d %s; want 401 UNAUTHENTICATED", status, body)
	}
}

// make run's secret is random, made once per checkout, readable by its owner only.
func TestMakeRunMakesItsJWTSecretOnce(t *testing.T) {
	dir := t.TempDir()
	secret := func(path string) string {
		t.Helper()
		out, err := exec.Command("make", "-s", "jwt-secret", "RUN_JWT_SECRET="+path).CombinedOutput()
		if err != nil {
			t.Fatalf("make jwt-secret: %v: %s", err, out)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v; want 0600", path, fi.Mode().Perm())
		}
		return strings.TrimSpace(string(b))
	}
	first := secret(filepath.Join(dir, "a", "jwt-secret"))
	if raw, err := base64.StdEncoding.DecodeString(first); err != nil || len(raw) < 32 {
		t.Errorf("secret %q: %d bytes, %v; want 32 random bytes in base64", first, len(raw), err)
	}
	if again := secret(filepath.Join(dir, "a", "jwt-secret")); again != first {
		t.Errorf("second make jwt-secret: got %q; want the first secret %q kept", again, first)
	}
	if other := secret(filepath.Join(dir, "b", "jwt-secret")); other == first {
		t.Error("another checkout: got the same secret; want a random one of its own")
	}
}

// A token revoked through one instance (signOut, or storefront revoke by id) is refused by
// another instance on the same Redis within a second, and the subscriptions it opened there
// end: the websocket closes with 4401, the stream of server-sent events ends with
// UNAUTHENTICATED; a new socket with it is refused.
func TestRevocationReachesEveryInstance(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	first, _ := startServer(t, env)
	second, _ := startServer(t, env)
	token := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))

	socket, err := wsOpen(t, second, transportWS, map[string]any{"Authorization": "Bearer " + token}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := wsjson.Write(t.Context(), socket, map[string]any{"id": "1", "type": "subscribe",
		"payload": map[string]any{"query": alertsQuery}}); err != nil {
		t.Fatal(err)
	}
	stream := sseAlerts(t, second, token, nil)
	if status, body := post(t, second+"/graphql", token, `{"query":"{ __typename }"}`); status != 200 {
		t.Fatalf("before sign-out: got %d %s; want 200", status, body)
	}

	if status, body := post(t, first+"/graphql", token, `{"query":"mutation { signOut }"}`); status != 200 || !strings.Contains(body, `"signOut":true`) {
		t.Fatalf("signOut on the first instance: got %d %s", status, body)
	}
	revoked := time.Now()
	awaitRefused(t, second, token, revoked)

	awaitClosed(t, "websocket on the second instance", socket)
	var last alertResult
	for r := range stream {
		last = r
	}
	if len(last.Errors) != 1 || last.Errors[0].Extensions.Code != "UNAUTHENTICATED" {
		t.Errorf("SSE on the second instance: last result %+v; want UNAUTHENTICATED", last)
	}
	if _, err := wsOpen(t, second, transportWS, map[string]any{"Authorization": "Bearer " + token}, false); err == nil {
		t.Error("a new websocket with the revoked token: acknowledged; want refused")
	}

	// By id, from the command line, as for a token that leaked.
	leaked := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))
	p, err := resolvers.NewAuth([]byte(env["JWT_SECRET"]), resolvers.AuthOptions{}).Parse(leaked)
	if err != nil {
		t.Fatal(err)
	}
	runCommand(t, env, "revoke", p.TokenID)
	awaitRefused(t, second, leaked, time.Now())
	awaitRefused(t, first, leaked, time.Now())
}

// awaitRefused fails t unless base refuses token within a second of since.
func awaitRefused(t *testing.T, base, token string, since time.Time) {
	t.Helper()
	for {
		status, _ := post(t, base+"/graphql", token, `{"query":"{ __typename }"}`)
		if status == 401 {
			t.Logf("%s refused the revoked token %v after the revocation", base, time.Since(since).Round(time.Millisecond))
			return
		}
		if time.Since(since) > time.Second {
			t.Fatalf("%s: still %d a second after the revocation; want 401", base, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A customer's sign-out through one instance reaches every instance sharing its Redis within
// a second, open sockets included: signOut ends one session, customerSignOutEverywhere all
// of the customer's, wherever they were opened.
func TestCustomerSignOutReachesEveryInstance(t *testing.T) {
	env := withRedis(t, newTestEnv(t), cachetest.URL(t))
	first, _ := startServer(t, env)
	second, _ := startServer(t, env)
	register := `{"query":"mutation { customerRegister(input: {email: \"ann@example.com\", password: \"correct horse battery\", name: \"Ann\"}) { accessToken } }"}`
	signIn := `{"query":"mutation { customerSignIn(email: \"ann@example.com\", password: \"correct horse battery\") { accessToken } }"}`
	a := accessToken(t, first, register)
	b, c := accessToken(t, second, signIn), accessToken(t, first, signIn)
	sockets := map[string]*websocket.Conn{}
	for token, base := range map[string]string{a: second, b: second, c: first} {
		var err error
		if sockets[token], err = wsOpen(t, base, transportWS, map[string]any{"Authorization": "Bearer " + token}, false); err != nil {
			t.Fatal(err)
		}
	}

	if status, body := post(t, first+"/graphql", a, `{"query":"mutation { signOut }"}`); status != 200 || !strings.Contains(body, `"signOut":true`) {
		t.Fatalf("signOut on the first instance: got %d %s", status, body)
	}
	awaitRefused(t, second, a, time.Now())
	awaitClosed(t, "the signed-out session's socket on the second instance", sockets[a])
	if status, body := post(t, second+"/graphql", b, `{"query":"{ me { email } }"}`); status != 200 || !strings.Contains(body, "ann@example.com") {
		t.Fatalf("another session after signOut: got %d %s; want it to go on", status, body)
	}

	if status, body := post(t, first+"/graphql", c, `{"query":"mutation { customerSignOutEverywhere }"}`); status != 200 || !strings.Contains(body, `"customerSignOutEverywhere":true`) {
		t.Fatalf("customerSignOutEverywhere on the first instance: got %d %s", status, body)
	}
	since := time.Now()
	awaitRefused(t, second, b, since)
	awaitRefused(t, first, c, since)
	awaitClosed(t, "a socket on the second instance", sockets[b])
	awaitClosed(t, "a socket on the first instance", sockets[c])
}

// accessToken posts a sign-in or sign-up mutation and returns the access token it gives.
func accessToken(t *testing.T, base, mutation string) string {
	t.Helper()
	status, body := post(t, base+"/graphql", "", mutation)
	var r struct {
		Data map[string]struct{ AccessToken string } `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); status != 200 || err != nil || len(r.Data) != 1 {
		t.Fatalf("%s: got %d %s", mutation, status, body)
	}
	for _, v := range r.Data {
		return v.AccessToken
	}
	return ""
}

// awaitClosed fails t unless the server closes c with 4401 within 10 s.
func awaitClosed(t *testing.T, what string, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if code := websocket.CloseStatus(err); code != 4401 {
				t.Errorf("%s: closed with %d (%v); want 4401", what, code, err)
			}
			return
		}
	}
}
