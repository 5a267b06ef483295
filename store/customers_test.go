package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/store"
)

// TestCustomerByIdentity creates an identity provider's customer once, however many first
// sign-ins race, and takes the provider's email only when no account has it.
func TestCustomerByIdentity(t *testing.T) {
	pool := dbtest.New(t)
	st := store.New(pool)
	ctx := context.Background()
	if _, err := st.RegisterCustomer(ctx, "ann@example.com", "Ann", "$argon2id$stub"); err != nil {
		t.Fatal(err)
	}

	const racers = 8
	ids := make([]string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			c, err := st.CustomerByIdentity(ctx, "https://idp.example", "sub-1", ptr("bob@example.com"), "Bob")
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = c.ID
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("racing first sign-ins gave customers %v; want one", ids)
		}
	}
	bob, err := st.Customer(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if bob.Email == nil || *bob.Email != "bob@example.com" || bob.EmailVerifiedAt == nil || bob.HasPassword() {
		t.Fatalf("provider's customer: got %+v; want bob@example.com, verified, without a password", bob)
	}

	taken, err := st.CustomerByIdentity(ctx, "https://idp.example", "sub-2", ptr("ann@example.com"), "Not Ann")
	if err != nil {
		t.Fatal(err)
	}
	if taken.Email != nil {
		t.Fatalf("a provider's email that an account has: got %q; want none, the accounts kept apart", *taken.Email)
	}
	if n := mustCount(t, pool, `SELECT count(*) FROM customers`); n != 3 {
		t.Fatalf("%d customers; want 3", n)
	}
}

// TestAddressBookBound keeps at most MaxAddresses per customer, also when additions race.
func TestAddressBookBound(t *testing.T) {
	pool := dbtest.New(t)
	st := store.New(pool)
	ctx := context.Background()
	c, err := st.RegisterCustomer(ctx, "ann@example.com", "Ann", "$argon2id$stub")
	if err != nil {
		t.Fatal(err)
	}
	addr := model.Address{Name: "Ann", Line1: "1 Main St", City: "Springfield", PostalCode: "1", Country: "US"}
	var wg sync.WaitGroup
	for range model.MaxAddresses + 10 {
		wg.Go(func() { _, _ = st.CreateAddress(ctx, c.ID, addr, true) })
	}
	wg.Wait()
	if n := mustCount(t, pool, `SELECT count(*) FROM customer_addresses`); n != model.MaxAddresses {
		t.Fatalf("%d addresses; want %d", n, model.MaxAddresses)
	}
	if n := mustCount(t, pool, `SELECT count(*) FROM customer_addresses WHERE default_shipping`); n != 1 {
		t.Fatalf("%d default addresses; want 1", n)
	}
	_, err = st.CreateAddress(ctx, c.ID, addr, false)
	wantCode(t, err, model.CodeConflict, "")
}
