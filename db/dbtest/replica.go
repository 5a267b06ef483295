package dbtest

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ReplicaURLEnv names the variable holding a superuser URL of a streaming replica of the
// test server (make test-fleet starts one with scripts/pg.sh replica).
const ReplicaURLEnv = "TEST_REPLICA_URL"

// ReplicaURL returns the URL of the database at dbURL on the test server's replica, once the
// replica has replayed its creation.
func ReplicaURL(tb testing.TB, dbURL string) string {
	tb.Helper()
	replica := os.Getenv(ReplicaURLEnv)
	if replica == "" {
		tb.Fatalf("%s is not set: run make test-fleet", ReplicaURLEnv)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := url.Parse(replica)
	if err != nil {
		tb.Fatal(err)
	}
	u.Host = r.Host
	out := u.String()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, out)
		if err == nil {
			conn.Close(ctx)
			cancel()
			return out
		}
		cancel()
		if time.Now().After(deadline) {
			tb.Fatalf("the replica has no copy of the test database after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
