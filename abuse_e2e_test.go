package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/cache/cachetest"
)

// errorOf returns the code and extensions of the only error of a GraphQL answer.
func errorOf(t *testing.T, errs []map[string]any) (string, map[string]any) {
	t.Helper()
	if len(errs) != 1 {
		t.Fatalf("errors: %v; want one", errs)
	}
	ext, _ := errs[0]["extensions"].(map[string]any)
	code, _ := ext["code"].(string)
	return code, ext
}

// A stock row locked from outside for 10 s while 24 checkouts queue on it: every checkout
// answers UNAVAILABLE, with a retry hint, after the lock timeout (2 s; 8 transactions at a
// time, the others wait for a slot), at the latest at the request deadline; reads of other products, uncached, stay fast throughout, because waiting writers
// cannot take every connection; and once the lock is gone the product sells again.
func TestLockedRowLeavesOtherReadsAlone(t *testing.T) {
	s := newShopWith(t, 40, testEnv{"CACHE": "false"})
	locked := s.product(1, 100)
	var others []string
	for i := range 10 {
		others = append(others, s.product(2+i, 10))
	}
	carts := make([]string, 24)
	for i := range carts {
		carts[i] = s.guestCart(map[string]int{locked: 1})
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM inventory WHERE product_id = $1 FOR UPDATE`, rawID(locked)); err != nil {
		t.Fatal(err)
	}
	lockedAt := time.Now()
	defer func() { _ = tx.Rollback(ctx) }()

	answers := make([]string, len(carts))
	var wg sync.WaitGroup
	for i, cart := range carts {
		wg.Go(func() {
			_, errs := gql(t, s.base, "", checkoutMutation, checkoutVars(cart, fmt.Sprint("locked-", i)))
			if len(errs) != 1 {
				answers[i] = fmt.Sprint(errs)
				return
			}
			ext, _ := errs[0]["extensions"].(map[string]any)
			answers[i] = fmt.Sprint(ext["code"], " retryAfter=", ext["retryAfter"])
		})
	}
	var slowest time.Duration
	for i := 0; time.Since(lockedAt) < 6*time.Second; i++ {
		began := time.Now()
		s.must("", `query($id: ID!) { product(id: $id) { name price { amount } availability { available } } }`,
			map[string]any{"id": others[i%len(others)]})
		slowest = max(slowest, time.Since(began))
	}
	wg.Wait()
	checkoutsDone := time.Since(lockedAt)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	for i, answer := range answers {
		if answer != "UNAVAILABLE retryAfter=1" {
			t.Errorf("checkout %d while its stock was locked: %s; want UNAVAILABLE with retryAfter 1", i, answer)
		}
	}
	if checkoutsDone > 11*time.Second {
		t.Errorf("the checkouts took %s to answer; want each given up after the lock timeout (2 s), or at the latest at the request deadline (10 s)", checkoutsDone)
	}
	if slowest > 2*time.Second {
		t.Errorf("the slowest read of another product took %s while checkouts waited for the lock; want it far below the 2 s lock timeout", slowest)
	}
	if _, code := s.checkout("", carts[0], "after-the-lock"); code != "" {
		t.Errorf("the same checkout once the lock is gone: %s; want the order", code)
	}
}

// One guest cannot take a product's stock for the length of the hold: a line is capped, and
// a third unpaid order of the same email (or the same address under another email) is
// refused until the first expires.
func TestOneGuestCannotHoardStock(t *testing.T) {
	s := newShop(t, 20)
	p := s.product(1, 100)
	order := func(units int, email, street string) (string, map[string]any) {
		cart := s.guestCart(map[string]int{p: units})
		vars := map[string]any{"c": cart, "k": cart, "e": email, "l": street}
		data, errs := gql(t, s.base, "", checkoutMutation, vars)
		if len(errs) == 0 {
			return "", data
		}
		return errorOf(t, errs)
	}
	if code, _ := order(60, "hoarder@example.com", "1 Main St"); code != "BAD_USER_INPUT" {
		t.Errorf("60 units of one product: %q; want BAD_USER_INPUT (20 at most)", code)
	}
	for i := range 2 {
		if code, _ := order(20, "hoarder@example.com", "1 Main St"); code != "" {
			t.Fatalf("unpaid order %d: %s; want it placed", i+1, code)
		}
	}
	for _, who := range [][2]string{{"hoarder@example.com", "9 Other Rd"}, {"someone-else@example.com", "1 main st"}} {
		code, ext := order(20, who[0], who[1])
		if code != "RATE_LIMITED" || ext["retryAfter"] == nil {
			t.Errorf("a third unpaid order by %v: %q %v; want RATE_LIMITED with retryAfter", who, code, ext)
		}
	}
	available := s.must("", `query($id: ID!) { product(id: $id) { availability { available } } }`, map[string]any{"id": p})
	if got := available["product"].(map[string]any)["availability"].(map[string]any)["available"]; got != 60.0 {
		t.Errorf("available after the guest's attempts: %v; want 60 (two orders of 20)", got)
	}
}

// With Redis down, starting a session is UNAVAILABLE with a retry hint, never INTERNAL.
func TestSessionsThroughARedisOutage(t *testing.T) {
	redisServer := cachetest.StartServer(t)
	s := newShopWith(t, 10, withRedis(t, testEnv{}, redisServer.URL()))
	const start = `mutation { startSession { token } }`
	if _, errs := gql(t, s.base, "", start, nil); len(errs) > 0 {
		t.Fatalf("with Redis up: %v", errs)
	}
	redisServer.Stop()
	var codes []string
	for range 5 {
		_, errs := gql(t, s.base, "", start, nil)
		code, ext := errorOf(t, errs)
		if ext["retryAfter"] == nil {
			t.Errorf("%s without retryAfter", code)
		}
		codes = append(codes, code)
	}
	if slices.ContainsFunc(codes, func(c string) bool { return c != "UNAVAILABLE" }) {
		t.Errorf("startSession with Redis down: %v; want UNAVAILABLE every time", codes)
	}
}
