package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// crossOriginScript calls the API at api from the page's origin the ways web clients do:
// a POST with the headers GraphQL clients send (a preflight), a GET, a websocket
// (graphql-transport-ws) and an SSE subscription; it returns what each saw, "blocked" when
// the browser or the server refused it.
const crossOriginScript = `(async (api, token) => {
	const out = {};
	const auth = {"Authorization": "Bearer " + token};
	try {
		const r = await fetch(api + "/graphql", {method: "POST", body: JSON.stringify({query: "{ __typename }"}),
			headers: {...auth, "Content-Type": "application/json", "X-Session-Id": "none"}});
		out.post = r.status + " " + (await r.json()).data.__typename + " " + (r.headers.get("X-Request-Id") ? "id" : "no id");
	} catch (e) { out.post = "blocked"; }
	try {
		out.get = String((await fetch(api + "/graphql?query=%%7B__typename%%7D")).status);
	} catch (e) { out.get = "blocked"; }
	out.ws = await new Promise((resolve) => {
		const ws = new WebSocket(api.replace("http", "ws") + "/graphql", "graphql-transport-ws");
		ws.onopen = () => ws.send(JSON.stringify({type: "connection_init", payload: auth}));
		ws.onmessage = (m) => { resolve(JSON.parse(m.data).type); ws.close(); };
		ws.onerror = () => resolve("blocked");
		setTimeout(() => resolve("timeout"), 10000);
	});
	try {
		const stop = new AbortController();
		const r = await fetch(api + "/graphql", {method: "POST", signal: stop.signal,
			headers: {...auth, "Content-Type": "application/json", "Accept": "text/event-stream"},
			body: JSON.stringify({query: "subscription { inventoryAlerts { kind } }"})});
		out.sse = r.status + " " + r.headers.get("Content-Type");
		stop.abort();
	} catch (e) { out.sse = "blocked"; }
	return JSON.stringify(out);
})(%q, %q)`

// CORS from a real browser: a page of an allowed origin uses the API over HTTP, websocket
// and SSE; a page of another origin can do none of it.
func TestCORSInABrowser(t *testing.T) {
	page := func() *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<!doctype html><title>shop</title><p>a storefront on its own origin</p>")
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	allowed, denied := page(), page()
	env := newTestEnv(t)
	env["CORS_ORIGINS"] = allowed.URL
	runCommand(t, env, "migrate")
	token := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))
	api, _ := startServer(t, env)

	b := newBrowser(t, allowed.URL, "/")
	want := map[string]string{"post": "200 Query id", "get": "200", "ws": "connection_ack", "sse": "200 text/event-stream"}
	for _, origin := range []*httptest.Server{allowed, denied} {
		if origin == denied {
			want = map[string]string{"post": "blocked", "get": "blocked", "ws": "blocked", "sse": "blocked"}
			b.do(chromedp.Navigate(denied.URL + "/"))
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(eval[string](b, fmt.Sprintf(crossOriginScript, api, token))), &got); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if !strings.HasPrefix(got[k], v) {
				t.Errorf("page of %s, %s: got %q; want %q", origin.URL, k, got[k], v)
			}
		}
	}
}
