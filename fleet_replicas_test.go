//go:build fleet

package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/db/dbtest"
)

// replicaShop is a shop whose server reads from a streaming replica of its database
// (DATABASE_READ_URL), with a connection to that replica.
func replicaShop(t *testing.T, settings testEnv) (*shop, *pgx.Conn) {
	t.Helper()
	env := newTestEnv(t)
	env["RATE_LIMIT_PER_SECOND"] = "0"
	env["DATABASE_READ_URL"] = dbtest.ReplicaURL(t, env["DATABASE_URL"])
	for k, v := range settings {
		env[k] = v
	}
	runCommand(t, env, "seed", "--products", "20", "--seed", "6")
	base, _ := startServer(t, env)
	s := shopOn(t, env, base)
	replica, err := pgx.Connect(context.Background(), env["DATABASE_READ_URL"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replica.Close(context.Background()) })
	waitUntil(t, "the server to read from the replica", func() bool {
		_, body, _ := get(t, base+"/metrics")
		return replicaServes.MatchString(body)
	})
	return s, replica
}

var replicaServes = regexp.MustCompile(`(?m)^storefront_db_replica_usable\{[^}]*\} 1$`)

// caughtUp waits until the replica has replayed everything the primary has written so far.
func caughtUp(t *testing.T, s *shop, replica *pgx.Conn) {
	t.Helper()
	var lsn string
	if err := s.db.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the replica to replay the primary's writes", func() bool {
		var done bool
		err := replica.QueryRow(context.Background(), `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done)
		return err == nil && done
	})
}

const productNameQuery = `query($id: ID!) { product(id: $id) { name } }`

// With the replica's replay paused (and a lag bound it stays within), guests read the
// catalog from the replica and see it as it was, while a merchandiser reads what they just
// changed, and carts, checkout and orders, on the primary, work from start to end.
func TestFleetReadYourWrites(t *testing.T) {
	// No cache: each read goes to PostgreSQL, and shows which server answered it.
	s, replica := replicaShop(t, testEnv{"CACHE": "false", "REPLICA_MAX_LAG": "10m"})
	product := s.product(3, 10)
	caughtUp(t, s, replica)
	old := s.must("", productNameQuery, map[string]any{"id": product})["product"].(map[string]any)["name"].(string)
	if _, err := replica.Exec(context.Background(), `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = replica.Exec(context.Background(), `SELECT pg_wal_replay_resume()`) })

	renamed := s.must(s.merchandiser, `mutation($id: ID!) { updateProduct(id: $id, input: {name: "Renamed on the primary"}) { name } }`,
		map[string]any{"id": product})
	if got := renamed["updateProduct"].(map[string]any)["name"]; got != "Renamed on the primary" {
		t.Fatalf("the mutation answered %v", got)
	}
	if got := s.must(s.merchandiser, productNameQuery, map[string]any{"id": product})["product"].(map[string]any)["name"]; got != "Renamed on the primary" {
		t.Errorf("the merchandiser reads %q after renaming it: not their own write", got)
	}
	if got := s.must("", productNameQuery, map[string]any{"id": product})["product"].(map[string]any)["name"]; got != old {
		t.Errorf("a guest reads %q while the replica has not replayed the rename: want %q, from the replica", got, old)
	}
	listing := fmt.Sprint(s.must("", `{ products(first: 50) { edges { node { id name } } } }`, nil))
	if !strings.Contains(listing, old) || strings.Contains(listing, "Renamed on the primary") {
		t.Errorf("a guest's listing does not come from the paused replica: %s", listing)
	}

	// A customer's cart and order are theirs at once, although the replica has neither.
	ann := s.customer("ann")
	cart := s.must(ann, `mutation { createCart { cart { id } } }`, nil)["createCart"].(map[string]any)["cart"].(map[string]any)["id"].(string)
	s.must(ann, `mutation($c: ID!, $p: ID!) { addCartLines(cartId: $c, lines: [{productId: $p, quantity: 2}]) { id } }`,
		map[string]any{"c": cart, "p": product})
	mine := s.must(ann, `{ myCart { totalQuantity } }`, nil)
	if fmt.Sprint(mine) != "map[myCart:map[totalQuantity:2]]" {
		t.Errorf("the customer's cart right after filling it: %v", mine)
	}
	order, code := s.checkout(ann, cart, "replica-1")
	if code != "" {
		t.Fatalf("checkout: %s", code)
	}
	orders := s.must(ann, `{ myOrders { edges { node { id } } } }`, nil)
	if !strings.Contains(fmt.Sprint(orders), order["id"].(string)) {
		t.Errorf("myOrders right after checkout: %v; want the new order", orders)
	}

	if _, err := replica.Exec(context.Background(), `SELECT pg_wal_replay_resume()`); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "guests to see the rename once the replica replayed it", func() bool {
		return s.must("", productNameQuery, map[string]any{"id": product})["product"].(map[string]any)["name"] == "Renamed on the primary"
	})
}

// The cache never keeps what a replica behind a change read: its invalidation waits for the
// replicas to replay the change (or skips those that do not within REPLICA_MAX_LAG), so the
// fill after it reads the new value. Without that wait the fill would read the paused
// replica and keep the old price for CACHE_TTL.
func TestFleetCacheFillsNeverReadBehindAnInvalidation(t *testing.T) {
	s, replica := replicaShop(t, testEnv{"REPLICA_MAX_LAG": "1s", "CACHE_L1_TTL": "50ms"})
	product := s.product(4, 10)
	caughtUp(t, s, replica)
	if _, err := replica.Exec(context.Background(), `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = replica.Exec(context.Background(), `SELECT pg_wal_replay_resume()`) })
	for round := range 3 {
		price(t, s.base, product) // cached, maybe from the replica
		want := fmt.Sprintf("%d.00", 300+round)
		setPrice(t, s.base, s.merchandiser, product, want)
		waitUntil(t, "guests to see the new price", func() bool { return price(t, s.base, product) == want })
		for range 50 {
			if got := price(t, s.base, product); got != want {
				t.Fatalf("round %d: a guest sees %s after %s was served: the cache was filled from the paused replica", round, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
