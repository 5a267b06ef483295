package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/rs/cors"
)

// newCORS returns the cross-origin policy of the API: pages of the configured origins
// (exact, such as https://shop.example.com, or a wildcard subdomain, https://*.example.com)
// may call it with the headers GraphQL clients send. Browsers cache a preflight for maxAge.
// Tokens travel in the Authorization header, never in cookies, so credentials stay off.
func newCORS(origins []string, maxAge time.Duration) *cors.Cors {
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Accept", "X-Session-Id", "X-Request-Id",
			// Apollo Client's client awareness and CSRF-prevention headers, and W3C trace context.
			"Apollographql-Client-Name", "Apollographql-Client-Version", "Apollo-Require-Preflight",
			"Traceparent", "Tracestate"},
		ExposedHeaders: []string{"X-Request-Id", "X-Session-Id", "Retry-After"},
		MaxAge:         int(maxAge.Seconds()),
	})
}

// originAllowed reports whether a websocket may open from the request's Origin: a request
// without one (not from a browser), a page of the API's own origin, or an origin the CORS
// policy allows. Browsers apply no CORS to websockets: the server must check.
func originAllowed(c *cors.Cors) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		if i := strings.Index(origin, "://"); i >= 0 && strings.EqualFold(origin[i+3:], r.Host) {
			return true
		}
		return c.OriginAllowed(r)
	}
}

// trustedProxies names the client of a request behind reverse proxies and load balancers.
type trustedProxies []netip.Prefix

// parseTrustedProxies reads TRUSTED_PROXIES: CIDRs, or single addresses.
func parseTrustedProxies(list []string) (trustedProxies, error) {
	var out trustedProxies
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("TRUSTED_PROXIES: %q is neither a CIDR nor an address", s)
			}
			p = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (t trustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// client returns the address of the request's client: the peer, unless the peer is a
// trusted proxy; then the nearest address of X-Forwarded-For that is not a trusted proxy
// (the ones before it could be forged by the client itself).
func (t trustedProxies) client(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !t.trusts(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop ends what can be believed
		}
		if !t.trusts(hop) {
			return hop.Unmap().String()
		}
		host = hop.Unmap().String()
	}
	return host
}

type clientAddrKey struct{}

// withClientAddr sets the request's RemoteAddr to its client's address (port 0 when it came
// through a proxy), so that rate limits and logs name the client rather than the proxy, and
// keeps the address for log lines.
func withClientAddr(proxies trustedProxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := proxies.client(r)
		r = r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, client))
		if host, _, _ := net.SplitHostPort(r.RemoteAddr); host != client {
			r.RemoteAddr = net.JoinHostPort(client, "0")
		}
		next.ServeHTTP(w, r)
	})
}
