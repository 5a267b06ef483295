//go:build fleet

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache/cachetest"
)

// The deployment guide's Redis ACL (README, "Deploying") is enough for everything the server
// does in Redis: a user limited to its prefix's keys and channels and to the guide's command
// categories runs the cache, invalidation, sessions, rate limits and persisted queries.
func TestFleetRedisACLFromTheGuide(t *testing.T) {
	admin, err := redis.ParseURL(cachetest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(admin)
	defer rdb.Close()
	prefix := cachetest.NewPrefix()
	user := "acl" + strings.Trim(prefix, ":")
	// The guide's rule, with this test's prefix for sf:.
	rule := fmt.Sprintf("on >s3cret ~%s* ~rate:%s* &%s* +@read +@write +@scripting +@pubsub +@connection +@transaction +info", prefix, prefix, prefix)
	if err := rdb.Do(context.Background(), append([]any{"ACL", "SETUSER", user}, toAny(strings.Fields(rule))...)...).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "ACL", "DELUSER", user) })

	env := newTestEnv(t)
	env["REDIS_URL"] = (&url.URL{Scheme: "redis", User: url.UserPassword(user, "s3cret"), Host: admin.Addr, Path: "/0"}).String()
	env["REDIS_PREFIX"] = prefix
	env["RATE_LIMIT_PER_SECOND"] = "100"
	runCommand(t, env, "seed", "--products", "30", "--seed", "3")
	base, _, serverLog := startServerWithLog(t, env)
	token := strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser"))
	id := firstProductID(t, base)
	price(t, base, id)
	setPrice(t, base, token, id, "77.00")
	waitUntil(t, "the price change to reach the cache", func() bool { return price(t, base, id) == "77.00" })
	data, errs := gql(t, base, "", `mutation { startSession { token } }`, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got, err := sessionRead(t, base, data["startSession"].(map[string]any)["token"].(string)); err != nil || got == "" {
		t.Errorf("a session read back: %q %v", got, err)
	}
	time.Sleep(200 * time.Millisecond)
	// Redis refusals show as NOPERM in the server's log; the cache hides them from clients.
	if log := serverLog(); strings.Contains(log, "NOPERM") || strings.Contains(log, "breaker") {
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "NOPERM") || strings.Contains(line, "breaker") {
				t.Error(line)
			}
		}
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// The deployment guide's TLS (README, "Deploying"), against servers that verify nothing less:
// PostgreSQL checked against its authority (sslmode=verify-full), a Redis that has no plain
// port reached with rediss://, an ACL user and REDIS_CA_CERT, and the search cluster over
// https with ELASTICSEARCH_CA_CERT, first with basic authentication in the URL and then with
// ELASTICSEARCH_API_KEY. The OpenSearch of the tests has no security plugin (scripts/search.sh),
// so TLS and authentication are HAProxy's in front of it, as a TLS-terminating proxy does.
func TestFleetTLSFromTheGuide(t *testing.T) {
	tlsDir, pgCA := os.Getenv("TEST_TLS_DIR"), os.Getenv("TEST_PG_CA")
	if tlsDir == "" || pgCA == "" {
		t.Fatal("TEST_TLS_DIR and TEST_PG_CA are not set: run make test-fleet")
	}
	ca := filepath.Join(tlsDir, "ca.pem")
	const apiKey = "c3RvcmVmcm9udDpzM2NyZXQ="
	c := testSearchCluster(t)
	index := fmt.Sprintf("fleet_tls_%d", rand.Uint32())
	t.Cleanup(func() { deleteIndices(c.urls[0], index) })
	search := startSearchTLSProxy(t, tlsDir, c.urls, apiKey)

	env := newTestEnv(t)
	env["DATABASE_URL"] = strings.Replace(env["DATABASE_URL"], "sslmode=disable", "sslmode=verify-full&sslrootcert="+url.QueryEscape(pgCA), 1)
	env["REDIS_URL"] = "rediss://storefront:s3cret@" + startTLSRedis(t, tlsDir) + "/0"
	env["REDIS_CA_CERT"] = ca
	env["ELASTICSEARCH_URL"] = "https://storefront:s3cret@" + search
	env["ELASTICSEARCH_CA_CERT"] = ca
	env["SEARCH_INDEX"], env["SEARCH_TIMEOUT"] = index, "5s"
	env["RATE_LIMIT_PER_SECOND"] = "0"
	runCommand(t, env, "seed", "--products", "30", "--seed", "4")
	base, stop, serverLog := startServerWithLog(t, env)
	s := shopOn(t, env, base)
	waitLonger(t, "searches answered by the cluster, through TLS and basic authentication", 2*time.Minute, func() bool {
		return searchResult(t, s, "", map[string]any{"q": "oak"})["backend"] == "elasticsearch"
	})

	var plain, all int
	if err := s.db.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE NOT s.ssl), count(*)
		FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.datname = current_database()`).Scan(&plain, &all); err != nil {
		t.Fatal(err)
	}
	if plain != 0 || all < 2 {
		t.Errorf("%d of the %d sessions on the database without TLS; want none, and the server's among them", plain, all)
	}

	id := firstProductID(t, base)
	price(t, base, id)
	setPrice(t, base, strings.TrimSpace(runCommand(t, env, "token", "--role", "merchandiser")), id, "66.00")
	waitUntil(t, "the price change to reach the cache", func() bool { return price(t, base, id) == "66.00" })
	rdb := redis.NewClient(redisOptionsOf(t, env))
	defer rdb.Close()
	if n, err := rdb.DBSize(context.Background()).Result(); err != nil || n == 0 {
		t.Errorf("keys in the Redis reached over TLS: %d, %v; want the cache's", n, err)
	}
	// Trouble with TLS or Redis shows in the server's log, though the cache hides it from clients.
	for _, line := range strings.Split(serverLog(), "\n") {
		if !strings.Contains(line, `"level":"WARN"`) && !strings.Contains(line, `"level":"ERROR"`) {
			continue
		}
		if l := strings.ToLower(line); strings.Contains(l, "redis") || strings.Contains(l, "tls:") || strings.Contains(l, "x509") || strings.Contains(l, "certificate") {
			t.Error(line)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	env["ELASTICSEARCH_URL"], env["ELASTICSEARCH_API_KEY"] = "https://"+search, apiKey
	base, _ = startServer(t, env)
	s = shopOn(t, env, base)
	if got := searchResult(t, s, "", map[string]any{"q": "oak"})["backend"]; got != "elasticsearch" {
		t.Errorf("a search with the API key answered by %v; want elasticsearch", got)
	}
}

// startTLSRedis runs a redis-server that listens with TLS only (the certificate of tlsDir)
// and knows one user, storefront with password s3cret, until the test ends; it returns its
// host:port once it answers.
func startTLSRedis(t *testing.T, tlsDir string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(os.Getenv(cachetest.ServerBinEnv), "--port", "0", "--tls-port", port, "--bind", "127.0.0.1",
		"--tls-cert-file", filepath.Join(tlsDir, "server.crt"), "--tls-key-file", filepath.Join(tlsDir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(tlsDir, "ca.pem"), "--tls-auth-clients", "no",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(),
		"--user", "default", "off", "--user", "storefront", "on", ">s3cret", "~*", "&*", "+@all")
	runUntilCleanup(t, cmd, "redis-server")
	opts, err := redis.ParseURL("rediss://storefront:s3cret@" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	opts.TLSConfig.RootCAs = rootsOf(t, filepath.Join(tlsDir, "ca.pem"))
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	waitUntil(t, "the TLS Redis to answer", func() bool { return rdb.Ping(context.Background()).Err() == nil })
	return addr
}

// searchTLSProxyConfig is a TLS-terminating HAProxy in front of the search nodes that lets
// through requests with basic authentication (storefront, s3cret) or the API key (its scheme
// in any case, as Elasticsearch takes it), and answers any other 401.
const searchTLSProxyConfig = `global
    maxconn 200
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
userlist searchers
    user storefront insecure-password s3cret
frontend search
    bind 127.0.0.1:%d ssl crt %s
    acl basic http_auth(searchers)
    acl apikey_scheme req.hdr(authorization),word(1,' '),lower -m str apikey
    acl apikey_value req.hdr(authorization),word(2,' ') -m str %s
    http-request auth realm search unless basic or apikey_scheme apikey_value
    default_backend nodes
backend nodes
    option redispatch
    retry-on conn-failure
%s`

// startSearchTLSProxy runs searchTLSProxyConfig in front of nodes until the test ends and
// returns its host:port once it refuses a request without credentials.
func startSearchTLSProxy(t *testing.T, tlsDir string, nodes []string, apiKey string) string {
	t.Helper()
	var servers strings.Builder
	for i, n := range nodes {
		u, _ := url.Parse(n)
		fmt.Fprintf(&servers, "    server n%d %s\n", i, u.Host)
	}
	port := freePort(t)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	conf := fmt.Sprintf(searchTLSProxyConfig, port, filepath.Join(tlsDir, "server.pem"), apiKey, servers.String())
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, exec.Command(os.Getenv("HAPROXY_BIN"), "-db", "-f", cfg), "haproxy")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: rootsOf(t, filepath.Join(tlsDir, "ca.pem"))}}}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitUntil(t, "the search proxy to refuse a request without credentials", func() bool {
		res, err := client.Get("https://" + addr + "/")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusUnauthorized
	})
	return addr
}

// runUntilCleanup starts cmd and kills it when the test ends, showing its output if the
// test failed.
func runUntilCleanup(t *testing.T, cmd *exec.Cmd, name string) {
	t.Helper()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s said:\n%s", name, out.String())
		}
	})
}

// rootsOf reads the authorities of a PEM file.
func rootsOf(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	roots, err := trustedRoots(path)
	if err != nil {
		t.Fatal(err)
	}
	return roots
}

// redisOptionsOf are the options the server makes of env's Redis settings.
func redisOptionsOf(t *testing.T, env testEnv) *redis.Options {
	t.Helper()
	cfg, err := loadConfig(env.get)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cfg.redisOptions()
	if err != nil {
		t.Fatal(err)
	}
	return opts.Simple()
}
