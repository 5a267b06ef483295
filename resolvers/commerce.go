package resolvers

import (
	"context"
	"encoding/json"
	"net/mail"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/homegoods/storefront/graph/model"
)

// Commerce is what the resolvers need from the carts, orders and stock store.
type Commerce interface {
	CreateCart(ctx context.Context, customerID string) (*model.Cart, error)
	CartByID(ctx context.Context, id string) (*model.Cart, error)
	CartByToken(ctx context.Context, token string) (*model.Cart, error)
	CustomerCart(ctx context.Context, customerID string) (*model.Cart, error)
	AddCartLines(ctx context.Context, cartID string, lines []model.CartLineInput) (*model.Cart, error)
	UpdateCartLines(ctx context.Context, cartID string, lines []model.CartLineInput) (*model.Cart, error)
	RemoveCartLines(ctx context.Context, cartID string, productIDs []string) (*model.Cart, error)
	AttachCartToCustomer(ctx context.Context, cartID, customerID string) (*model.Cart, error)
	Checkout(ctx context.Context, customerID string, in model.CheckoutInput) (*model.Order, error)
	Order(ctx context.Context, id string) (*model.Order, error)
	ListOrders(ctx context.Context, f model.OrderFilter, page model.Page) (*model.OrderConnection, error)
	MarkOrderPaid(ctx context.Context, id string) (*model.Order, error)
	FulfillOrder(ctx context.Context, id string) (*model.Order, error)
	CancelOrder(ctx context.Context, id string) (*model.Order, error)
	SetStock(ctx context.Context, productID, warehouseID string, quantity int, reason, actor string) (*model.InventoryLevel, error)
	AdjustStock(ctx context.Context, productID, warehouseID string, delta int, reason, actor string) (*model.InventoryLevel, error)
	SetLowStockThreshold(ctx context.Context, productID, warehouseID string, threshold int) (*model.InventoryLevel, error)
	StockMovements(ctx context.Context, productID string, limit int) ([]*model.StockMovement, error)
}

// cart finds the cart named by the cartId argument and checks that the caller may use it:
// a global id names a customer's cart, for that customer only; anything else is a guest
// cart's token, which is its own credential. Refusals read NOT_FOUND so that they reveal
// nothing about other people's carts.
func (r *Resolver) cart(ctx context.Context, cartID string) (*model.Cart, error) {
	p := PrincipalFrom(ctx)
	if typ, id, ok := model.ParseGlobalID(cartID); ok && typ == model.TypeCart {
		if p.CustomerID == "" {
			return nil, model.NotFound("cart")
		}
		c, err := r.Commerce.CartByID(ctx, id)
		if err != nil || c.CustomerID != p.CustomerID {
			return nil, notFoundUnless(err, "cart")
		}
		return c, nil
	}
	c, err := r.Commerce.CartByToken(ctx, cartID)
	if err != nil {
		return nil, notFoundUnless(err, "cart")
	}
	if c.CustomerID != "" && c.CustomerID != p.CustomerID {
		return nil, model.NotFound("cart") // a signed-in customer's cart is theirs alone now
	}
	c.Token = cartID
	return c, nil
}

// notFoundUnless keeps a real failure and turns everything else into NOT_FOUND.
func notFoundUnless(err error, kind string) error {
	if err != nil && model.ErrorCodeOf(err) != model.CodeNotFound {
		return err
	}
	return model.NotFound(kind)
}

// changeCart runs a cart change on the cart named by cartID and keeps the guest token on
// the cart it returns, since that is how a guest names it.
func (r *Resolver) changeCart(ctx context.Context, cartID string, change func(id string) (*model.Cart, error)) (*model.Cart, error) {
	c, err := r.cart(ctx, cartID)
	if err != nil {
		return nil, err
	}
	changed, err := change(c.ID)
	if err != nil {
		return nil, err
	}
	if changed.CustomerID == "" {
		changed.Token = c.Token
	}
	return changed, nil
}

// cartLines decodes the product ids of cart line inputs.
func cartLines(in []*model.CartLineInput) ([]model.CartLineInput, error) {
	out := make([]model.CartLineInput, len(in))
	for i, l := range in {
		id, err := decodeID("lines."+strconv.Itoa(i)+".productId", model.TypeProduct, l.ProductID)
		if err != nil {
			return nil, err
		}
		out[i] = model.CartLineInput{ProductID: id, Quantity: l.Quantity}
	}
	return out, nil
}

// order returns an order the caller may read: any for merchandisers, their own for
// customers; NOT_FOUND otherwise.
func (r *Resolver) order(ctx context.Context, gid string) (*model.Order, error) {
	id, err := decodeID("id", model.TypeOrder, gid)
	if err != nil {
		return nil, err
	}
	o, err := r.Commerce.Order(ctx, id)
	if err != nil {
		return nil, err
	}
	p := PrincipalFrom(ctx)
	if p.Role != model.RoleMerchandiser && (p.CustomerID == "" || o.CustomerID != p.CustomerID) {
		return nil, model.NotFound("order")
	}
	return o, nil
}

// checkoutInput checks what a checkout is given besides the cart.
func checkoutInput(cartID, key, email string, address model.Address, expected *model.Cents) (model.CheckoutInput, error) {
	if n := utf8.RuneCountInString(key); n == 0 || n > 200 {
		return model.CheckoutInput{}, model.InvalidArgument("idempotencyKey", "idempotencyKey must have 1 to 200 characters")
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != strings.TrimSpace(email) || len(a.Address) > model.MaxEmailLen {
		return model.CheckoutInput{}, model.InvalidArgument("email", "not an email address of at most %d characters", model.MaxEmailLen)
	}
	if err := checkAddressAt("shippingAddress", address); err != nil {
		return model.CheckoutInput{}, err
	}
	raw, _ := json.Marshal(address)
	return model.CheckoutInput{CartID: cartID, IdempotencyKey: key, Email: strings.TrimSpace(email),
		ShippingAddress: raw, ExpectedTotal: expected}, nil
}

// checkAddressAt checks an address given as the argument arg.
func checkAddressAt(arg string, a model.Address) error {
	for field, v := range map[string]string{"name": a.Name, "line1": a.Line1, "city": a.City, "postalCode": a.PostalCode} {
		if n := utf8.RuneCountInString(strings.TrimSpace(v)); n == 0 || n > model.MaxAddressFieldLen {
			return model.InvalidArgument(arg+"."+field, "%s must have 1 to %d characters", field, model.MaxAddressFieldLen)
		}
	}
	for field, v := range map[string]*string{"line2": a.Line2, "region": a.Region} {
		if v != nil && utf8.RuneCountInString(*v) > model.MaxAddressFieldLen {
			return model.InvalidArgument(arg+"."+field, "%s must have at most %d characters", field, model.MaxAddressFieldLen)
		}
	}
	if !model.IsCountryCode(a.Country) {
		return model.InvalidArgument(arg+".country", "country is an ISO 3166-1 alpha-2 code such as \"US\"")
	}
	return nil
}

// actor names who changed stock, for the audit trail.
func actor(ctx context.Context) string {
	p := PrincipalFrom(ctx)
	if p.CustomerID != "" {
		return string(p.Role) + ":" + p.CustomerID
	}
	return string(p.Role)
}

// money is an amount in a currency.
func money(amount model.Cents, currency string) *model.Money {
	return &model.Money{Amount: amount, Currency: currency}
}

// transition applies an order state change to an order named by its global id.
func (r *Resolver) transition(ctx context.Context, gid string, change func(context.Context, string) (*model.Order, error)) (*model.Order, error) {
	id, err := decodeID("id", model.TypeOrder, gid)
	if err != nil {
		return nil, err
	}
	return change(ctx, id)
}

// stockChange decodes the product and warehouse of a stock change and applies it.
func (r *Resolver) stockChange(ctx context.Context, productGID, warehouseGID string, change func(productID, warehouseID string) (*model.InventoryLevel, error)) (*model.InventoryLevel, error) {
	productID, err := decodeID("productId", model.TypeProduct, productGID)
	if err != nil {
		return nil, err
	}
	warehouseID, err := decodeID("warehouseId", model.TypeWarehouse, warehouseGID)
	if err != nil {
		return nil, err
	}
	return change(productID, warehouseID)
}
