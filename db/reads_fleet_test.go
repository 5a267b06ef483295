//go:build fleet

package db_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/dbtest"
)

// The fleet tests (make test-fleet, scripts/test.sh --fleet) run against a real streaming
// replica of the test server, started by scripts/pg.sh replica.
const (
	replicaURLEnv  = "TEST_REPLICA_URL" // superuser URL of the replica
	replicaDirEnv  = "TEST_REPLICA_DIR" // its directory, to stop and start it
	primaryPortEnv = "TEST_PRIMARY_PORT"
)

// newReads opens the test database on the primary and the replica and runs their routing
// until the test ends; it returns once the replica serves reads.
func newReads(t *testing.T, maxLag time.Duration) (*db.Reads, *pgxpool.Pool, *pgxpool.Pool) {
	t.Helper()
	primaryURL := dbtest.NewURL(t)
	primary := dbtest.Open(t, primaryURL, nil)
	replica := dbtest.Open(t, dbtest.ReplicaURL(t, primaryURL), nil)
	reads := db.NewReads(primary, []*pgxpool.Pool{replica}, db.ReadOptions{MaxLag: maxLag})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = reads.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the replica to serve reads", 30*time.Second, func() bool { return onReplica(t, reads.For(context.Background())) })
	return reads, primary, replica
}

// onReplica tells whether q runs its queries on a server in recovery.
func onReplica(t *testing.T, q db.Querier) bool {
	t.Helper()
	var recovering bool
	if err := q.QueryRow(context.Background(), `SELECT pg_is_in_recovery()`).Scan(&recovering); err != nil {
		t.Fatalf("read failed: %v", err)
	}
	return recovering
}

func waitFor(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stale-tolerant reads go to the replica, reads of a context marked Primary to the primary,
// and after AwaitReplay the replica shows what was committed before it.
func TestFleetReadsRouting(t *testing.T) {
	reads, primary, _ := newReads(t, 2*time.Second)
	ctx := context.Background()
	for range 20 {
		if !onReplica(t, reads.For(ctx)) {
			t.Fatal("a stale-tolerant read ran on the primary while the replica serves reads")
		}
		if onReplica(t, reads.For(db.Primary(ctx))) {
			t.Fatal("a read marked Primary ran on the replica")
		}
	}
	for i := range 20 {
		if _, err := primary.Exec(ctx, `INSERT INTO warehouses (code, name, priority) VALUES ($1, $1, 9)`, fmt.Sprint("W-RYW-", i)); err != nil {
			t.Fatal(err)
		}
		if err := reads.AwaitReplay(ctx); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := reads.For(ctx).QueryRow(ctx, `SELECT count(*) FROM warehouses WHERE priority = 9`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != i+1 {
			t.Fatalf("after AwaitReplay the replica shows %d of the %d rows committed", n, i+1)
		}
	}
}

// A replica whose replay is paused is skipped once it lags by more than MaxLag, so that no
// read is staler than that; AwaitReplay waits for it at most MaxLag and fences it off; it
// serves reads again once it has caught up.
func TestFleetLaggingReplicaIsSkipped(t *testing.T) {
	const maxLag = time.Second
	reads, primary, replica := newReads(t, maxLag)
	ctx := context.Background()
	if _, err := primary.Exec(ctx, `INSERT INTO warehouses (code, name) VALUES ('W-LAG', 'lag')`); err != nil {
		t.Fatal(err)
	}
	if err := reads.AwaitReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	resume := func() {
		if _, err := replica.Exec(context.Background(), `SELECT pg_wal_replay_resume()`); err != nil {
			t.Errorf("resume replay: %v", err)
		}
	}
	t.Cleanup(resume)

	// Writes go on; reads that the replica served must never be older than maxLag plus a
	// probe's period (the lag is measured at each probe).
	start := time.Now()
	skipped := time.Duration(0)
	for time.Since(start) < maxLag+5*time.Second {
		if _, err := primary.Exec(ctx, `UPDATE warehouses SET priority = priority + 1`); err != nil {
			t.Fatal(err)
		}
		if !onReplica(t, reads.For(ctx)) {
			skipped = time.Since(start)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if skipped == 0 {
		t.Fatalf("a replica whose replay is paused still serves reads %s after the pause (max lag %s)", time.Since(start), maxLag)
	}
	if skipped < maxLag/2 {
		t.Errorf("the replica was skipped %s after the pause, well before it lagged by %s", skipped, maxLag)
	}
	t.Logf("replica skipped %s after its replay paused (max lag %s)", skipped, maxLag)

	// Skipped: reads see the latest write, from the primary.
	var want, got int
	if err := primary.QueryRow(ctx, `SELECT sum(priority) FROM warehouses`).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if err := reads.For(ctx).QueryRow(ctx, `SELECT sum(priority) FROM warehouses`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("a read while the replica is skipped saw %d, the primary has %d", got, want)
	}

	resume()
	waitFor(t, "the replica to serve reads again after catching up", 20*time.Second,
		func() bool { return onReplica(t, reads.For(ctx)) })

	// AwaitReplay bounds its wait by maxLag and fences the paused replica off at once.
	if _, err := replica.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.Exec(ctx, `UPDATE warehouses SET priority = priority + 1`); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := reads.AwaitReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > maxLag+time.Second {
		t.Errorf("AwaitReplay took %s, more than max lag %s", took, maxLag)
	}
	if onReplica(t, reads.For(ctx)) {
		t.Fatal("after AwaitReplay gave up on it, the paused replica still serves reads")
	}
	resume()
	waitFor(t, "the fenced replica to serve reads once it replayed past the fence", 20*time.Second,
		func() bool { return onReplica(t, reads.For(ctx)) })
}

// When the replica stops, reads go on against the primary without one failure; when it is
// back, it serves reads again.
func TestFleetReplicaFailover(t *testing.T) {
	reads, _, _ := newReads(t, 2*time.Second)
	dir := os.Getenv(replicaDirEnv)
	if dir == "" {
		t.Fatalf("%s is not set: run make test-fleet", replicaDirEnv)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pg := func(args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(root, "scripts/pg.sh"), args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg.sh %v: %v\n%s", args, err, out)
		}
	}
	u, _ := url.Parse(os.Getenv(dbtest.ReplicaURLEnv))
	restart := func() { pg("replica", dir, u.Port(), os.Getenv(primaryPortEnv), "fast") }
	t.Cleanup(restart) // also when the test fails: the replica serves the other tests
	ctx := context.Background()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		pg("stop", dir)
	}()
	onPrimary := 0
	for {
		var n int
		if err := reads.For(ctx).QueryRow(ctx, `SELECT count(*) FROM warehouses`).Scan(&n); err != nil {
			t.Fatalf("a read failed while the replica stopped: %v", err)
		}
		if !onReplica(t, reads.For(ctx)) {
			onPrimary++
		}
		select {
		case <-stopped:
		default:
			continue
		}
		break
	}
	for range 50 {
		if onReplica(t, reads.For(ctx)) {
			t.Fatal("a stopped replica serves reads")
		}
	}
	restart()
	waitFor(t, "the restarted replica to serve reads", 30*time.Second, func() bool { return onReplica(t, reads.For(ctx)) })
}
