// Package cachetest gives tests a Redis client with a key prefix of their own on the real
// servers that `make test` starts (a single server and a three-master cluster), and throwaway
// redis-server processes that a test may stop and start again.
//
// Like db/dbtest, a helper whose service is missing skips its test in a plain `go test` and
// fails it under `make test` (STOREFRONT_REQUIRE_SERVICES=1).
package cachetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// URLEnv names the variable holding the URL of the test server, redis://127.0.0.1:6381/0
	// under `make test`.
	URLEnv = "TEST_REDIS_URL"
	// ClusterAddrsEnv names the variable holding the comma-separated host:port addresses of
	// the test cluster's nodes.
	ClusterAddrsEnv = "TEST_REDIS_CLUSTER_ADDRS"
	// ServerBinEnv names the variable holding the absolute path of redis-server, used by
	// StartServer (which otherwise looks for redis-server in PATH).
	ServerBinEnv = "REDIS_SERVER_BIN"
	// RequireEnv, when set to 1 (as `make test` does), turns a missing service into a failure.
	RequireEnv = "STOREFRONT_REQUIRE_SERVICES"
)

// cleanupTimeout bounds how long deleting a test's keys may take.
const cleanupTimeout = 30 * time.Second

var (
	counter atomic.Int64
	// runID tells apart test processes that got the same pid, so that keys a killed run left
	// behind on a reused server never share a prefix with a later test.
	runID = strconv.FormatInt(time.Now().UnixNano()%(1<<40), 36)
)

// URL returns the URL of the test server, or skips tb (fails it under make test) when there
// is none.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(URLEnv)
	if url == "" {
		missing(tb, URLEnv, "a Redis URL such as redis://127.0.0.1:6381/0")
	}
	return url
}

// ClusterAddrs returns the addresses of the test cluster's nodes, or skips tb (fails it under
// make test) when there are none.
func ClusterAddrs(tb testing.TB) []string {
	tb.Helper()
	var addrs []string
	for a := range strings.SplitSeq(os.Getenv(ClusterAddrsEnv), ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		missing(tb, ClusterAddrsEnv, "comma-separated host:port addresses of Redis Cluster nodes")
	}
	return addrs
}

func missing(tb testing.TB, env, what string) {
	tb.Helper()
	if os.Getenv(RequireEnv) == "1" {
		tb.Fatalf("%s is not set: the Redis that `make test` starts is required", env)
	}
	tb.Skipf("needs Redis: run `make test`, or set %s to %s", env, what)
}

// NewPrefix returns a key prefix that no other test uses, such as "t:1234:k3x9q2:7:". It
// deletes nothing: Client and ClusterClient do that for the prefixes they hand out.
func NewPrefix() string {
	return fmt.Sprintf("t:%d:%s:%d:", os.Getpid(), runID, counter.Add(1))
}

// Client returns a client on the test server and a key prefix of tb's own. When tb ends,
// every key with that prefix is deleted and the client is closed. Keep every key of the test
// under the prefix (code under test takes it as its namespace); the server is shared with
// tests running in parallel, so never FLUSHDB.
func Client(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	url := URL(tb)
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("bad %s: %v", URLEnv, err)
	}
	client := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		tb.Fatalf("test Redis at %s does not answer: %v", opt.Addr, err)
	}
	prefix := NewPrefix()
	tb.Cleanup(func() {
		_ = client.Close() // the test may have closed it already
		// A client of its own, whatever state the test left its client in.
		admin := redis.NewClient(opt)
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := DeletePrefix(ctx, admin, prefix); err != nil {
			tb.Logf("delete test keys %s*: %v", prefix, err)
		}
	})
	return client, prefix
}

// ClusterClient returns a cluster client on the test cluster and a key prefix of tb's own.
// When tb ends, every key with that prefix is deleted from every master and the client is
// closed. Keys under one prefix spread over all the cluster's slots unless the test puts a
// hash tag in them.
func ClusterClient(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	addrs := ClusterAddrs(tb)
	opt := &redis.ClusterOptions{Addrs: addrs}
	client := redis.NewClusterClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.Ping(ctx).Err()
	})
	if err != nil {
		_ = client.Close()
		tb.Fatalf("test Redis Cluster at %s does not answer: %v", strings.Join(addrs, ","), err)
	}
	prefix := NewPrefix()
	tb.Cleanup(func() {
		_ = client.Close()
		admin := redis.NewClusterClient(opt)
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		err := admin.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return DeletePrefix(ctx, m, prefix)
		})
		if err != nil {
			tb.Logf("delete test keys %s*: %v", prefix, err)
		}
	})
	return client, prefix
}

// DeletePrefix deletes every key that starts with prefix from the server of c (SCAN MATCH
// and UNLINK, a key at a time in pipelines, so it also works on one node of a cluster, where
// keys of different slots cannot go in one command). prefix must hold no glob characters.
func DeletePrefix(ctx context.Context, c *redis.Client, prefix string) error {
	if strings.ContainsAny(prefix, `*?[]\`) {
		return fmt.Errorf("prefix %q holds glob characters", prefix)
	}
	const batch = 500
	keys := make([]string, 0, batch)
	unlink := func() error {
		if len(keys) == 0 {
			return nil
		}
		pipe := c.Pipeline()
		for _, k := range keys {
			pipe.Unlink(ctx, k)
		}
		keys = keys[:0]
		_, err := pipe.Exec(ctx)
		return err
	}
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == batch {
			if err := unlink(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return unlink()
}

// Reopen returns a new client object on the server of rdb, closed when tb ends: what a
// second server instance would use.
func Reopen(tb testing.TB, rdb redis.UniversalClient) redis.UniversalClient {
	tb.Helper()
	var c redis.UniversalClient
	switch r := rdb.(type) {
	case *redis.Client:
		c = redis.NewClient(r.Options())
	case *redis.ClusterClient:
		c = redis.NewClusterClient(r.Options())
	default:
		tb.Fatalf("unexpected client type %T", rdb)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}
