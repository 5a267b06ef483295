package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/homegoods/storefront/graph/model"
)

// lines formats a cart's lines as "product x quantity @ snapshot", in the cart's order.
func (sh *shop) lines(c *model.Cart) string {
	var out []string
	for _, l := range c.Lines {
		out = append(out, fmt.Sprintf("%s x%d @%d", sh.name(l.ProductID), l.Quantity, l.PriceSnapshot))
	}
	return strings.Join(out, ", ")
}

func TestGuestCart(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	p, q, r := sh.products[0], sh.products[1], sh.products[2]
	sh.stock(p, 5, 5)
	sh.stock(q, 999, 10)
	sh.stock(r, 3)

	c, err := sh.s.CreateCart(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Token) != 43 || c.Status != model.CartOpen || c.CustomerID != "" {
		t.Fatalf("new guest cart: got token %q, %s, customer %q; want 32 bytes of base64url, OPEN, none", c.Token, c.Status, c.CustomerID)
	}
	hash := sha256.Sum256([]byte(c.Token))
	if n := sh.count(`SELECT count(*) FROM carts WHERE id = $1 AND token_hash = $2`, c.ID, hash[:]); n != 1 {
		t.Errorf("the cart row does not hold the token's sha256")
	}
	byToken, err := sh.s.CartByToken(ctx, c.Token)
	if err != nil || byToken.ID != c.ID || byToken.Token != "" {
		t.Errorf("by token: got %+v, %v; want cart %s without its token", byToken, err, c.ID)
	}
	_, err = sh.s.CartByToken(ctx, c.Token+"x")
	wantCode(t, err, model.CodeNotFound, "")

	steps := []struct {
		name string
		do   func() (*model.Cart, error)
		want string
	}{
		{"add", func() (*model.Cart, error) {
			return sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(q, 2), line(p, 1)})
		},
			fmt.Sprintf("p1 x2 @%d, p0 x1 @%d", q.Price.Amount, p.Price.Amount)},
		{"add more", func() (*model.Cart, error) {
			return sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(p, 4), line(r, 3)})
		},
			fmt.Sprintf("p1 x2 @%d, p0 x5 @%d, p2 x3 @%d", q.Price.Amount, p.Price.Amount, r.Price.Amount)},
		{"update", func() (*model.Cart, error) {
			return sh.s.UpdateCartLines(ctx, c.ID, []model.CartLineInput{line(q, 999), line(r, 0)})
		}, fmt.Sprintf("p1 x999 @%d, p0 x5 @%d", q.Price.Amount, p.Price.Amount)},
		{"remove", func() (*model.Cart, error) { return sh.s.RemoveCartLines(ctx, c.ID, []string{q.ID}) },
			fmt.Sprintf("p0 x5 @%d", p.Price.Amount)},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if sh.lines(got) != st.want {
			t.Errorf("%s: got %s; want %s", st.name, sh.lines(got), st.want)
		}
	}

	for _, bad := range []struct {
		name     string
		do       func() (*model.Cart, error)
		code     model.ErrorCode
		argument string
	}{
		{"add zero", func() (*model.Cart, error) { return sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(q, 0)}) }, model.CodeBadUserInput, "lines.0.quantity"},
		{"add 1000", func() (*model.Cart, error) { return sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(q, 1000)}) }, model.CodeBadUserInput, "lines.0.quantity"},
		{"add beyond 999", func() (*model.Cart, error) {
			return sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(q, 1), line(p, 995)})
		}, model.CodeBadUserInput, "lines.1.quantity"},
		{"update negative", func() (*model.Cart, error) {
			return sh.s.UpdateCartLines(ctx, c.ID, []model.CartLineInput{line(p, -1)})
		}, model.CodeBadUserInput, "lines.0.quantity"},
		{"unknown product", func() (*model.Cart, error) {
			return sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{{ProductID: "7d0e8a4e-5c1b-4c39-9f49-5d7c1f0f4a11", Quantity: 1}})
		}, model.CodeBadUserInput, "lines.0.productId"},
		{"repeated product", func() (*model.Cart, error) {
			return sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(r, 1), line(r, 1)})
		}, model.CodeBadUserInput, "lines.1.productId"},
		{"beyond stock", func() (*model.Cart, error) { return sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(p, 6)}) }, model.CodeOutOfStock, "lines.0.quantity"},
		{"unknown cart", func() (*model.Cart, error) {
			return sh.s.AddCartLines(ctx, "7d0e8a4e-5c1b-4c39-9f49-5d7c1f0f4a11", []model.CartLineInput{line(p, 1)})
		}, model.CodeNotFound, ""},
	} {
		before, _ := sh.s.CartByID(ctx, c.ID)
		_, err := bad.do()
		wantCode(t, err, bad.code, bad.argument)
		if after, _ := sh.s.CartByID(ctx, c.ID); sh.lines(after) != sh.lines(before) {
			t.Errorf("%s: refused, yet the cart changed to %s", bad.name, sh.lines(after))
		}
	}
	_, err = sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(p, 6)})
	if !strings.Contains(err.Error(), "only 10 of "+p.Name) {
		t.Errorf("out of stock: got %q; want it to say only 10 of %s are available", err, p.Name)
	}

	if _, err := sh.s.ArchiveProduct(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	_, err = sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(r, 1)})
	wantCode(t, err, model.CodeBadUserInput, "lines.0.productId")
}

func TestCheckedOutCartRefusesChanges(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	p := sh.products[0]
	sh.stock(p, 10)
	c := sh.cart(line(p, 1))
	sh.mustCheckout(c, "k")
	for name, do := range map[string]func() (*model.Cart, error){
		"add":    func() (*model.Cart, error) { return sh.s.AddCartLines(ctx, c, []model.CartLineInput{line(p, 1)}) },
		"update": func() (*model.Cart, error) { return sh.s.UpdateCartLines(ctx, c, []model.CartLineInput{line(p, 2)}) },
		"remove": func() (*model.Cart, error) { return sh.s.RemoveCartLines(ctx, c, []string{p.ID}) },
		"attach": func() (*model.Cart, error) { return sh.s.AttachCartToCustomer(ctx, c, "alice") },
	} {
		_, err := do()
		if model.ErrorCodeOf(err) != model.CodeConflict {
			t.Errorf("%s on a checked-out cart: got %v; want CONFLICT", name, err)
		}
	}
	got, err := sh.s.CartByID(ctx, c)
	if err != nil || got.Status != model.CartCheckedOut || sh.lines(got) != fmt.Sprintf("p0 x1 @%d", p.Price.Amount) {
		t.Errorf("checked-out cart: got %+v, %v; want CHECKED_OUT with its one line", got, err)
	}
}

func TestCustomerCart(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	_, err := sh.s.CustomerCart(ctx, "alice")
	wantCode(t, err, model.CodeNotFound, "")

	id := sameID(t, "create", 10, func() (string, error) {
		c, err := sh.s.CreateCart(ctx, "alice")
		if err != nil {
			return "", err
		}
		return c.ID, nil
	})
	c, err := sh.s.CustomerCart(ctx, "alice")
	if err != nil || c.ID != id || c.Token != "" || c.CustomerID != "alice" {
		t.Errorf("customer cart: got %+v, %v; want %s of alice, without a token", c, err, id)
	}
	// Once checked out, the customer gets a new cart.
	p := sh.products[0]
	sh.stock(p, 5)
	if _, err := sh.s.AddCartLines(ctx, c.ID, []model.CartLineInput{line(p, 1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sh.s.Checkout(ctx, "alice", model.CheckoutInput{CartID: c.ID, IdempotencyKey: "k", Email: "a@b.c"}); err != nil {
		t.Fatal(err)
	}
	next, err := sh.s.CreateCart(ctx, "alice")
	if err != nil || next.ID == c.ID || len(next.Lines) != 0 {
		t.Errorf("after checkout: got %+v, %v; want a new empty cart", next, err)
	}
}

func TestAttachCartToCustomer(t *testing.T) {
	sh := newShop(t)
	ctx := context.Background()
	p, q, r := sh.products[0], sh.products[1], sh.products[2]
	sh.stock(p, 999)
	sh.stock(q, 999)
	sh.stock(r, 999)

	// No cart yet: the guest cart becomes the customer's, and its token no longer opens it.
	guest, err := sh.s.CreateCart(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	attached, err := sh.s.AttachCartToCustomer(ctx, guest.ID, "alice")
	if err != nil || attached.ID != guest.ID || attached.CustomerID != "alice" {
		t.Fatalf("attach: got %+v, %v; want the guest cart, now alice's", attached, err)
	}
	_, err = sh.s.CartByToken(ctx, guest.Token)
	wantCode(t, err, model.CodeNotFound, "")
	again, err := sh.s.AttachCartToCustomer(ctx, guest.ID, "alice")
	if err != nil || again.ID != guest.ID {
		t.Errorf("attach again: got %v, %v; want the same cart", again, err)
	}
	_, err = sh.s.AttachCartToCustomer(ctx, guest.ID, "bob")
	wantCode(t, err, model.CodeForbidden, "")

	// A cart already: the guest lines merge into it.
	if _, err := sh.s.AddCartLines(ctx, guest.ID, []model.CartLineInput{line(p, 990), line(q, 1)}); err != nil {
		t.Fatal(err)
	}
	other := sh.cart(line(r, 2), line(p, 20))
	newPrice := p.Price.Amount + 1
	if _, err := sh.s.UpdateProduct(ctx, p.ID, model.UpdateProductInput{Price: &newPrice}); err != nil {
		t.Fatal(err)
	}
	merged, err := sh.s.AttachCartToCustomer(ctx, other, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("p0 x999 @%d, p1 x1 @%d, p2 x2 @%d", newPrice, q.Price.Amount, r.Price.Amount)
	if merged.ID != guest.ID || sh.lines(merged) != want {
		t.Errorf("merge: got cart %s with %s; want %s with %s", merged.ID, sh.lines(merged), guest.ID, want)
	}
	if gone, _ := sh.s.CartByID(ctx, other); gone.Status != model.CartMerged {
		t.Errorf("merged guest cart is %s; want MERGED", gone.Status)
	}
	_, err = sh.s.AddCartLines(ctx, other, []model.CartLineInput{line(q, 1)})
	wantCode(t, err, model.CodeConflict, "")
}
