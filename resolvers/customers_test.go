package resolvers_test

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/mail"
	"github.com/homegoods/storefront/mail/mailtest"
	"github.com/homegoods/storefront/password"
	"github.com/homegoods/storefront/resolvers"
	"github.com/homegoods/storefront/store"
)

// shopAPI is the API with carts, orders and accounts on a real database, its mails relayed
// by the change feed to a real SMTP server on loopback.
type shopAPI struct {
	*api
	smtp *mailtest.Server
}

// fastHashes keep tests quick: the same Argon2id with little memory.
var fastHashes = password.Params{Memory: 256, Time: 1, Threads: 1}

func newShopAPI(t *testing.T, opts ...apiOption) *shopAPI {
	t.Helper()
	all := append([]apiOption{func(c *resolvers.Config) {
		st := c.Catalog.(*store.Store)
		c.Commerce, c.Customers = st, st
		c.Passwords = password.NewHasher(fastHashes, 2)
		c.Auth = sessionAuth(t, resolvers.AuthOptions{})
	}}, opts...)
	a := newAPI(t, 3, all...)
	srv := mailtest.Start(t)
	consumer, err := mail.NewConsumer(mail.SMTP{Addr: srv.Addr, From: "shop@example.com"}, "https://shop.example", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	changes := feed.New(a.pool, feed.Options{Poll: 50 * time.Millisecond})
	if err := changes.Register(context.Background(), consumer.Name); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = changes.Relay(consumer)(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &shopAPI{api: a, smtp: srv}
}

// limits gives the API account limits of burst perAccount and perClient, refilled once a
// minute: a test never sees them refill.
func limits(t *testing.T, perAccount, perClient int) apiOption {
	return func(c *resolvers.Config) {
		l := func(burst int) resolvers.RateLimiter {
			rl, err := cache.NewMemoryRateLimiter(cache.RateLimit{PerSecond: 1, Burst: burst, Period: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			return rl
		}
		c.AccountLimits = resolvers.AccountLimits{PerAccount: l(perAccount), PerClient: l(perClient)}
	}
}

var mailedToken = regexp.MustCompile(`token=([A-Z2-7]+)`)

// mailed waits for a mail to the address about subject and returns the token it carries.
func (s *shopAPI) mailed(to, subject string) string {
	s.t.Helper()
	m := s.smtp.Wait(s.t, to, subject, 20*time.Second)
	found := mailedToken.FindStringSubmatch(m.Body)
	if found == nil {
		s.t.Fatalf("mail %q carries no token", m.Body)
	}
	return found[1]
}

const (
	registerMutation = `mutation($in: CustomerRegisterInput!, $cart: ID) { customerRegister(input: $in, guestCartId: $cart) {
		accessToken expiresAt customer { id email name emailVerifiedAt hasPassword } cart { id totalQuantity } } }`
	signInMutation = `mutation($e: String!, $p: String!, $cart: ID) { customerSignIn(email: $e, password: $p, guestCartId: $cart) {
		accessToken customer { email } cart { totalQuantity } } }`
)

func (s *shopAPI) register(email, pw, name string) string {
	s.t.Helper()
	data := s.ok("", registerMutation, map[string]any{"in": map[string]any{"email": email, "password": pw, "name": name}})
	return dig(data, "customerRegister", "accessToken").(string)
}

// guestCart returns a guest cart holding qty of an active product with stock.
func (s *shopAPI) guestCart(qty int) string {
	s.t.Helper()
	product := s.text(`SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY sku LIMIT 1`)
	warehouse := s.text(`SELECT id::text FROM warehouses ORDER BY code LIMIT 1`)
	s.ok(s.merchandiser(), `mutation($p: ID!, $w: ID!) { setStock(productId: $p, warehouseId: $w, quantity: 100, reason: "count") { available } }`,
		map[string]any{"p": gid("Product", product), "w": gid("Warehouse", warehouse)})
	cart := dig(s.ok("", `mutation { createCart { cart { id } } }`, nil), "createCart", "cart", "id").(string)
	s.ok("", `mutation($c: ID!, $p: ID!, $q: Int!) { addCartLines(cartId: $c, lines: [{productId: $p, quantity: $q}]) { totalQuantity } }`,
		map[string]any{"c": cart, "p": gid("Product", product), "q": qty})
	return cart
}

// guestOrder places a guest order with email and returns its number.
func (s *shopAPI) guestOrder(email, key string) int {
	s.t.Helper()
	data := s.ok("", `mutation($c: ID!, $e: String!, $k: String!) { checkout(cartId: $c, idempotencyKey: $k, email: $e,
		shippingAddress: {name: "Ann Lee", line1: "1 Main St", city: "Springfield", postalCode: "12345", country: "US"}) { number } }`,
		map[string]any{"c": s.guestCart(1), "e": email, "k": key})
	return int(dig(data, "checkout", "number").(float64))
}

// TestCustomerJourney walks from a guest order to an account that owns it: sign-up with a
// guest cart, the verification mail over SMTP, guest order lookup, claiming the order by
// verifying, myOrders, sign-in.
func TestCustomerJourney(t *testing.T) {
	s := newShopAPI(t)
	number := s.guestOrder("Ann@Example.com", "journey-1")

	lookup := `query($n: Int!, $e: String!) { orderByNumber(number: $n, email: $e) { number email } }`
	if got := dig(s.ok("", lookup, map[string]any{"n": number, "e": "ann@example.COM"}), "orderByNumber", "number"); got != float64(number) {
		t.Fatalf("guest lookup: got %v; want order %d", got, number)
	}
	wrongEmail := s.do("", lookup, map[string]any{"n": number, "e": "bob@example.com"})
	wrongNumber := s.do("", lookup, map[string]any{"n": number + 1000, "e": "ann@example.com"})
	if wrongEmail.code(t) != "NOT_FOUND" || wrongNumber.code(t) != "NOT_FOUND" || wrongEmail.Errors[0].Message != wrongNumber.Errors[0].Message {
		t.Fatalf("lookups with a wrong email and a wrong number: got %+v and %+v; want the same NOT_FOUND", wrongEmail.Errors, wrongNumber.Errors)
	}

	cart := s.guestCart(2)
	data := s.ok("", registerMutation, map[string]any{"cart": cart,
		"in": map[string]any{"email": "  ANN@example.com ", "password": "correct horse battery", "name": "Ann Lee"}})
	reg := dig(data, "customerRegister").(map[string]any)
	token := reg["accessToken"].(string)
	if dig(reg, "customer", "email") != "ann@example.com" || dig(reg, "customer", "emailVerifiedAt") != nil || dig(reg, "customer", "hasPassword") != true {
		t.Fatalf("registered customer: got %v; want ann@example.com, unverified, with a password", reg["customer"])
	}
	if dig(reg, "cart", "totalQuantity") != float64(2) {
		t.Fatalf("cart after sign-up: got %v; want the guest cart's 2 units", reg["cart"])
	}
	orders := `{ myOrders(first: 10) { edges { node { number } } } }`
	if edges := dig(s.ok(token, orders, nil), "myOrders", "edges").([]any); len(edges) != 0 {
		t.Fatalf("before verifying, myOrders has %d orders; want none", len(edges))
	}

	verification := s.mailed("ann@example.com", "Confirm your email")
	verify := `mutation($t: String!) { customerVerifyEmail(token: $t) { claimedOrders customer { emailVerifiedAt } } }`
	v := dig(s.ok("", verify, map[string]any{"t": verification}), "customerVerifyEmail")
	if dig(v, "claimedOrders") != float64(1) || dig(v, "customer", "emailVerifiedAt") == nil {
		t.Fatalf("verification: got %v; want 1 order claimed and the email verified", v)
	}
	if r := s.do("", verify, map[string]any{"t": verification}); r.code(t) != "BAD_USER_INPUT" {
		t.Fatalf("a used token: got %+v; want BAD_USER_INPUT", r.Errors)
	}
	edges := dig(s.ok(token, orders, nil), "myOrders", "edges").([]any)
	if len(edges) != 1 || dig(edges, 0, "node", "number") != float64(number) {
		t.Fatalf("after verifying, myOrders: got %v; want order %d", edges, number)
	}

	signedIn := s.ok("", signInMutation, map[string]any{"e": "Ann@Example.com", "p": "correct horse battery"})
	if dig(signedIn, "customerSignIn", "cart", "totalQuantity") != float64(2) {
		t.Fatalf("sign-in: got %v; want the customer's cart", signedIn)
	}
	me := s.ok(dig(signedIn, "customerSignIn", "accessToken").(string), `{ me { email name } }`, nil)
	if dig(me, "me", "name") != "Ann Lee" {
		t.Fatalf("me: got %v", me)
	}
}

// TestSignInAnswersAlike gives a wrong password, an unknown email and an identity
// provider's account the same answer.
func TestSignInAnswersAlike(t *testing.T) {
	s := newShopAPI(t)
	s.register("ann@example.com", "correct horse battery", "Ann")
	s.text(`INSERT INTO customers (email, name, issuer, subject) VALUES ('idp@example.com', 'Idp', 'https://idp.example', 'sub-1') RETURNING id::text`)
	var first string
	for _, c := range []struct{ email, pw string }{
		{"ann@example.com", "wrong horse battery"},
		{"nobody@example.com", "correct horse battery"},
		{"idp@example.com", "correct horse battery"},
	} {
		r := s.do("", signInMutation, map[string]any{"e": c.email, "p": c.pw})
		if r.code(t) != "UNAUTHENTICATED" || first != "" && r.Errors[0].Message != first {
			t.Fatalf("sign-in as %s: got %+v; want UNAUTHENTICATED %q", c.email, r.Errors, first)
		}
		first = r.Errors[0].Message
	}
}

// TestAccountBadInput refuses weak passwords, malformed emails, duplicate accounts, bad
// tokens and a foreign cart with typed errors, and changes nothing.
func TestAccountBadInput(t *testing.T) {
	s := newShopAPI(t)
	s.register("ann@example.com", "correct horse battery", "Ann")
	foreign := s.guestCart(1)
	s.ok(s.token("CUSTOMER", "00000000-0000-4000-8000-000000000001"), `mutation($c: ID!) { attachCartToCustomer(cartId: $c) { id } }`, map[string]any{"c": foreign})
	customers := s.count(`SELECT count(*) FROM customers`)
	tokens := s.count(`SELECT count(*) FROM customer_tokens`)

	for _, c := range []struct {
		name, email, pw, fullName string
		cart                      any
		code, path                string
	}{
		{"weak password", "bob@example.com", "short", "Bob", nil, "BAD_USER_INPUT", "input.password"},
		{"one repeated character", "bob@example.com", "aaaaaaaaaaaa", "Bob", nil, "BAD_USER_INPUT", "input.password"},
		{"malformed email", "bob@", "correct horse battery", "Bob", nil, "BAD_USER_INPUT", "input.email"},
		{"display name in email", "Bob <bob@example.com>", "correct horse battery", "Bob", nil, "BAD_USER_INPUT", "input.email"},
		{"empty name", "bob@example.com", "correct horse battery", "  ", nil, "BAD_USER_INPUT", "input.name"},
		{"duplicate, other case", "ANN@example.com", "correct horse battery", "Ann", nil, "CONFLICT", "input.email"},
		{"another customer's cart", "bob@example.com", "correct horse battery", "Bob", foreign, "NOT_FOUND", ""},
	} {
		r := s.do("", registerMutation, map[string]any{"cart": c.cart, "in": map[string]any{"email": c.email, "password": c.pw, "name": c.fullName}})
		if got := r.code(t); got != c.code || strings.Join(r.Errors[0].Extensions.ArgumentPath, ".") != c.path {
			t.Errorf("%s: got %s at %v; want %s at %q", c.name, got, r.Errors[0].Extensions.ArgumentPath, c.code, c.path)
		}
	}
	for _, token := range []string{"", "NOSUCHTOKEN", strings.Repeat("A", 1000)} {
		r := s.do("", `mutation($t: String!) { customerResetPassword(token: $t, newPassword: "correct horse battery 2") }`, map[string]any{"t": token})
		if r.code(t) != "BAD_USER_INPUT" {
			t.Errorf("reset with token %.10q: got %+v; want BAD_USER_INPUT", token, r.Errors)
		}
	}
	if n := s.count(`SELECT count(*) FROM customers`); n != customers {
		t.Errorf("refused sign-ups: %d customers; want %d", n, customers)
	}
	if n := s.count(`SELECT count(*) FROM customer_tokens`); n != tokens {
		t.Errorf("refused sign-ups: %d tokens; want %d", n, tokens)
	}
}

// TestPasswordReset mails a single-use, expiring token to an account and nothing to an
// unknown email, with the same answer.
func TestPasswordReset(t *testing.T) {
	s := newShopAPI(t)
	s.register("ann@example.com", "correct horse battery", "Ann")
	request := `mutation($e: String!) { customerRequestPasswordReset(email: $e) }`
	for _, email := range []string{"nobody@example.com", "ANN@example.com"} {
		if got := dig(s.ok("", request, map[string]any{"e": email}), "customerRequestPasswordReset"); got != true {
			t.Fatalf("reset request for %s: got %v; want true", email, got)
		}
	}
	token := s.mailed("ann@example.com", "Reset your password")
	reset := `mutation($t: String!, $p: String!) { customerResetPassword(token: $t, newPassword: $p) }`
	if r := s.do("", reset, map[string]any{"t": token, "p": "weak"}); r.code(t) != "BAD_USER_INPUT" {
		t.Fatalf("weak new password: got %+v", r.Errors)
	}
	s.ok("", reset, map[string]any{"t": token, "p": "battery staple horse"})
	if r := s.do("", reset, map[string]any{"t": token, "p": "another good password"}); r.code(t) != "BAD_USER_INPUT" {
		t.Fatalf("a used reset token: got %+v; want BAD_USER_INPUT", r.Errors)
	}
	if r := s.do("", signInMutation, map[string]any{"e": "ann@example.com", "p": "correct horse battery"}); r.code(t) != "UNAUTHENTICATED" {
		t.Fatalf("old password after reset: got %+v", r.Errors)
	}
	s.ok("", signInMutation, map[string]any{"e": "ann@example.com", "p": "battery staple horse"})

	s.ok("", request, map[string]any{"e": "ann@example.com"})
	s.smtp.Wait(t, "ann@example.com", "Reset", time.Second) // the first mail; wait for the second below
	deadline := time.Now().Add(20 * time.Second)
	for len(s.smtp.Mails()) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	mails := s.smtp.Mails()
	expired := mailedToken.FindStringSubmatch(mails[len(mails)-1].Body)[1]
	s.text(`UPDATE customer_tokens SET expires_at = now() - interval '1 second' WHERE used_at IS NULL AND purpose = 'RESET_PASSWORD' RETURNING 'x'`)
	if r := s.do("", reset, map[string]any{"t": expired, "p": "yet another password"}); r.code(t) != "BAD_USER_INPUT" {
		t.Fatalf("an expired reset token: got %+v; want BAD_USER_INPUT", r.Errors)
	}
	for _, m := range mails {
		if m.To == "nobody@example.com" {
			t.Fatal("a reset mail went to an email without an account")
		}
	}
}

// TestProfileAndAddressBook updates the name, changes the password and keeps an address book
// with one default shipping address; another customer's address is NOT_FOUND.
func TestProfileAndAddressBook(t *testing.T) {
	s := newShopAPI(t)
	ann := s.register("ann@example.com", "correct horse battery", "Ann")
	bob := s.register("bob@example.com", "correct horse battery", "Bob")

	if got := dig(s.ok(ann, `mutation { customerUpdate(input: {name: "Ann Lee"}) { name } }`, nil), "customerUpdate", "name"); got != "Ann Lee" {
		t.Fatalf("update: got %v", got)
	}
	change := `mutation($c: String!, $n: String!) { customerChangePassword(currentPassword: $c, newPassword: $n) }`
	if r := s.do(ann, change, map[string]any{"c": "wrong password!", "n": "battery staple horse"}); r.code(t) != "UNAUTHENTICATED" {
		t.Fatalf("change with a wrong current password: got %+v", r.Errors)
	}
	s.ok(ann, change, map[string]any{"c": "correct horse battery", "n": "battery staple horse"})
	s.ok("", signInMutation, map[string]any{"e": "ann@example.com", "p": "battery staple horse"})

	create := `mutation($a: AddressInput!, $d: Boolean) { customerAddressCreate(address: $a, defaultShipping: $d) { id defaultShipping address { city } } }`
	home := map[string]any{"name": "Ann Lee", "line1": "1 Main St", "city": "Springfield", "postalCode": "12345", "country": "US"}
	work := map[string]any{"name": "Ann Lee", "line1": "9 Mill Rd", "city": "Shelbyville", "postalCode": "54321", "country": "US"}
	homeID := dig(s.ok(ann, create, map[string]any{"a": home, "d": true}), "customerAddressCreate", "id").(string)
	workID := dig(s.ok(ann, create, map[string]any{"a": work, "d": true}), "customerAddressCreate", "id").(string)
	book := `{ me { addresses { id defaultShipping } defaultShippingAddress { id address { city } } } }`
	if got := dig(s.ok(ann, book, nil), "me", "defaultShippingAddress", "id"); got != workID {
		t.Fatalf("default after a second default: got %v; want the work address", got)
	}
	update := `mutation($id: ID!, $a: AddressInput, $d: Boolean) { customerAddressUpdate(id: $id, address: $a, defaultShipping: $d) { id address { city } } }`
	s.ok(ann, update, map[string]any{"id": homeID, "d": true})
	me := s.ok(ann, book, nil)
	if dig(me, "me", "defaultShippingAddress", "id") != homeID || dig(me, "me", "addresses", 1, "defaultShipping") != false {
		t.Fatalf("after making home the default: got %v", me)
	}
	bad := map[string]any{"name": "Ann", "line1": "1", "city": "X", "postalCode": "1", "country": "XX"}
	if r := s.do(ann, create, map[string]any{"a": bad}); r.code(t) != "BAD_USER_INPUT" || strings.Join(r.Errors[0].Extensions.ArgumentPath, ".") != "address.country" {
		t.Fatalf("bad country: got %+v", r.Errors)
	}
	for _, r := range []response{
		s.do(bob, update, map[string]any{"id": homeID, "a": work}),
		s.do(bob, `mutation($id: ID!) { customerAddressDelete(id: $id) }`, map[string]any{"id": homeID}),
	} {
		if r.code(t) != "NOT_FOUND" {
			t.Fatalf("another customer's address: got %+v; want NOT_FOUND", r.Errors)
		}
	}
	s.ok(ann, `mutation($id: ID!) { customerAddressDelete(id: $id) }`, map[string]any{"id": homeID})
	if n := len(dig(s.ok(ann, book, nil), "me", "addresses").([]any)); n != 1 {
		t.Fatalf("after a delete: %d addresses; want 1", n)
	}
	if r := s.do("", book, nil); r.code(t) != "UNAUTHENTICATED" {
		t.Fatalf("me as a guest: got %+v", r.Errors)
	}
}

// TestSignInRateLimits refuses attempts beyond an account's budget, even with the right
// password, and beyond a client's budget across accounts.
func TestSignInRateLimits(t *testing.T) {
	s := newShopAPI(t, limits(t, 3, 100))
	s.register("ann@example.com", "correct horse battery", "Ann")
	for i := range 3 {
		if r := s.do("", signInMutation, map[string]any{"e": "ann@example.com", "p": "wrong horse battery"}); r.code(t) != "UNAUTHENTICATED" {
			t.Fatalf("attempt %d: got %+v", i+1, r.Errors)
		}
	}
	if r := s.do("", signInMutation, map[string]any{"e": "ann@example.com", "p": "correct horse battery"}); r.code(t) != "RATE_LIMITED" {
		t.Fatalf("4th attempt on one account: got %+v; want RATE_LIMITED", r.Errors)
	}

	c := newShopAPI(t, limits(t, 100, 4)) // register costs the client one attempt
	c.register("bob@example.com", "correct horse battery", "Bob")
	for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		c.do("", signInMutation, map[string]any{"e": email, "p": "correct horse battery"})
	}
	if r := c.do("", signInMutation, map[string]any{"e": "bob@example.com", "p": "correct horse battery"}); r.code(t) != "RATE_LIMITED" {
		t.Fatalf("a client past its budget: got %+v; want RATE_LIMITED", r.Errors)
	}
	lookup := `query { orderByNumber(number: 1, email: "bob@example.com") { number } }`
	for range 4 { // a budget of its own
		if r := c.do("", lookup, nil); r.code(t) != "NOT_FOUND" {
			t.Fatalf("guest order lookup within the client's budget: got %+v; want NOT_FOUND", r.Errors)
		}
	}
	if r := c.do("", lookup, nil); r.code(t) != "RATE_LIMITED" {
		t.Fatalf("guest order lookup past the client's budget: got %+v; want RATE_LIMITED", r.Errors)
	}
}
