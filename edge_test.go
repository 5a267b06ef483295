package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTrustedProxiesNameTheClient(t *testing.T) {
	proxies, err := parseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ peer, forwarded, want string }{
		{"198.51.100.9:5000", "", "198.51.100.9"},                          // no proxy
		{"198.51.100.9:5000", "203.0.113.1", "198.51.100.9"},               // an untrusted peer cannot forward
		{"10.1.2.3:5000", "203.0.113.1", "203.0.113.1"},                    // one trusted proxy
		{"10.1.2.3:5000", "203.0.113.1, 192.0.2.7", "203.0.113.1"},         // two trusted proxies
		{"10.1.2.3:5000", "6.6.6.6, 203.0.113.1, 10.9.9.9", "203.0.113.1"}, // a forged first hop is ignored
		{"10.1.2.3:5000", "10.4.4.4", "10.4.4.4"},                          // only proxies: the farthest
		{"10.1.2.3:5000", "junk, 203.0.113.1", "203.0.113.1"},              // the nearest untrusted hop
		{"10.1.2.3:5000", "203.0.113.1, junk", "10.1.2.3"},                 // a malformed hop ends the walk
		{"[2001:db8::1]:5000", "2001:db8:1::5, 2600::1", "2600::1"},        // IPv6
		{"[::ffff:10.1.2.3]:5000", "::ffff:203.0.113.1", "203.0.113.1"},    // IPv4-mapped
	}
	for _, c := range cases {
		r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		r.RemoteAddr = c.peer
		if c.forwarded != "" {
			r.Header.Set("X-Forwarded-For", c.forwarded)
		}
		if got := proxies.client(r); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: got %s; want %s", c.peer, c.forwarded, got, c.want)
		}
	}
	if _, err := parseTrustedProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Error("TRUSTED_PROXIES 10.0.0.0/33: no error")
	}
}

// Rate limits count each client behind a trusted proxy apart, and never trust a header
// from anyone else.
func TestRateLimitsPerForwardedClient(t *testing.T) {
	for _, trusted := range []bool{true, false} {
		env := newTestEnv(t)
		env["RATE_LIMIT_PER_SECOND"], env["RATE_LIMIT_BURST"] = "1", "3"
		if trusted {
			env["TRUSTED_PROXIES"] = "127.0.0.0/8"
		}
		base, _ := startServer(t, env)
		ask := func(client string) (int, string) {
			// Three fields cost the whole burst: the budget then refills in 3 s.
			req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{ a: __typename b: __typename c: __typename }"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/graphql-response+json")
			req.Header.Set("X-Forwarded-For", client)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res.StatusCode, res.Header.Get("Retry-After")
		}
		refused := false
		for range 10 {
			if status, retry := ask("203.0.113.1"); status == http.StatusTooManyRequests {
				refused = true
				if retry == "" {
					t.Error("429 without Retry-After")
				}
				break
			}
		}
		if !refused {
			t.Fatalf("trusted %v: 10 quick requests costing the whole burst were all served", trusted)
		}
		status, _ := ask("203.0.113.2")
		if trusted && status != http.StatusOK {
			t.Errorf("another client behind the trusted proxy: got %d; want 200 (its own budget)", status)
		}
		if !trusted && status != http.StatusTooManyRequests {
			t.Errorf("a forwarded address from an untrusted peer: got %d; want 429 (the peer's budget)", status)
		}
	}
}

// The CORS policy at the HTTP level: preflights, the headers GraphQL clients send, wildcard
// subdomains, and nothing for other origins.
func TestCORSPreflight(t *testing.T) {
	env := newTestEnv(t)
	env["CORS_ORIGINS"] = "http://localhost:3000,https://*.shop.example.com"
	base, _ := startServer(t, env)
	preflight := func(origin string) http.Header {
		req, _ := http.NewRequest(http.MethodOptions, base+"/graphql", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		// Browsers list them in lowercase, sorted, as rs/cors expects.
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,traceparent,x-session-id")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode/100 != 2 {
			t.Errorf("preflight from %s: status %d", origin, res.StatusCode)
		}
		return res.Header
	}
	for _, origin := range []string{"http://localhost:3000", "https://eu.shop.example.com"} {
		h := preflight(origin)
		if h.Get("Access-Control-Allow-Origin") != origin || h.Get("Access-Control-Max-Age") != "600" ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "x-session-id") {
			t.Errorf("preflight from %s: got %v; want it allowed for 600 s with X-Session-Id", origin, h)
		}
	}
	for _, origin := range []string{"http://localhost:3001", "https://shop.example.com", "http://eu.shop.example.com"} {
		if h := preflight(origin); h.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: allowed; want no CORS headers", origin)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{ __typename }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://localhost:3000")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("POST from an allowed origin: got %v", res.Header)
	}
}
