package model

import (
	"encoding/json"
	"time"
)

// Cart is a shopping cart: a guest's, addressed by its secret token, or a customer's.
type Cart struct {
	ID string
	// Token is the guest cart's secret; only its creator learns it, from createCart.
	Token      string
	CustomerID string // "" for a guest cart
	Status     CartStatus
	Currency   string
	Lines      []*CartLine
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// CartStatus is where a cart stands: only an OPEN cart changes.
type CartStatus string

// The states of a cart: OPEN until checked out, or merged into its customer's open cart.
const (
	CartOpen       CartStatus = "OPEN"
	CartCheckedOut CartStatus = "CHECKED_OUT"
	CartMerged     CartStatus = "MERGED"
)

// CartLine is a quantity of one product in a cart, with the price it had when added.
type CartLine struct {
	ID        string
	ProductID string
	Quantity  int
	// PriceSnapshot is the unit price when the line was added or last changed; the current
	// price comes from the catalog, and a difference is shown to the customer.
	PriceSnapshot Cents
	AddedAt       time.Time
}

// CartLineInput adds or sets a quantity of a product.
type CartLineInput struct {
	ProductID string
	Quantity  int
}

// OrderStatus is where an order stands in its life.
type OrderStatus string

// The states of an order: PENDING_PAYMENT → PAID → FULFILLED, and CANCELLED from the first two.
const (
	OrderPendingPayment OrderStatus = "PENDING_PAYMENT"
	OrderPaid           OrderStatus = "PAID"
	OrderFulfilled      OrderStatus = "FULFILLED"
	OrderCancelled      OrderStatus = "CANCELLED"
)

// Order is a placed order with its lines and the stock reserved for them.
type Order struct {
	ID              string
	Number          int64 // human-friendly, increasing
	CustomerID      string
	Email           string
	Status          OrderStatus
	Currency        string
	Total           Cents
	ShippingAddress json.RawMessage
	IdempotencyKey  string
	Lines           []*OrderLine
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// ExpiresAt is when an unpaid order is cancelled and its stock released.
	ExpiresAt time.Time
}

// OrderLine is one product of an order at the price the customer paid.
type OrderLine struct {
	ProductID   string
	SKU         string
	Name        string
	Quantity    int
	UnitPrice   Cents
	Allocations []*Allocation
	// Currency is the order's; the API fills it in from the order.
	Currency string
}

// UnitPriceMoney is the unit price in the order's currency.
func (l *OrderLine) UnitPriceMoney() Money { return Money{Amount: l.UnitPrice, Currency: l.Currency} }

// LineTotal is the unit price times the quantity.
func (l *OrderLine) LineTotal() Money {
	return Money{Amount: l.UnitPrice * Cents(l.Quantity), Currency: l.Currency}
}

// TotalMoney is the order's total in its currency.
func (o *Order) TotalMoney() Money { return Money{Amount: o.Total, Currency: o.Currency} }

// Allocation is the part of an order line reserved in one warehouse.
type Allocation struct {
	WarehouseID string
	Quantity    int
}

// CheckoutInput is what a checkout needs besides the cart.
type CheckoutInput struct {
	CartID          string
	IdempotencyKey  string
	Email           string
	ShippingAddress json.RawMessage
	// ExpectedTotal, when set, makes the checkout refuse (CONFLICT, with the new total) if
	// the re-validated prices no longer add up to it.
	ExpectedTotal *Cents
}

// StockMovement is one entry of the stock audit trail.
type StockMovement struct {
	ID            int64
	ProductID     string
	WarehouseID   string
	Delta         int
	QuantityAfter int
	Reason        string
	Actor         string
	CreatedAt     time.Time
}

// AlertKind classifies a stock change that crossed a threshold.
type AlertKind string

// The inventory alerts.
const (
	AlertLowStock    AlertKind = "LOW_STOCK"
	AlertOutOfStock  AlertKind = "OUT_OF_STOCK"
	AlertBackInStock AlertKind = "BACK_IN_STOCK"
)

// InventoryAlert is a committed stock change that crossed a threshold in a warehouse.
type InventoryAlert struct {
	// ID is the id of the change feed's event that raised the alert (the outbox id).
	ID          string
	Kind        AlertKind
	ProductID   string
	WarehouseID string
	Available   int
	At          time.Time
	// Lagged is set on the alert a subscriber gets after it fell behind and lost some.
	Lagged bool
}

// StockAlert classifies a change of a warehouse's available stock from before to after:
// OUT_OF_STOCK when it runs out, BACK_IN_STOCK when it returns, LOW_STOCK when it falls to
// the threshold or below without running out. Any other change raises no alert.
func StockAlert(before, after, threshold int) (AlertKind, bool) {
	switch {
	case before > 0 && after <= 0:
		return AlertOutOfStock, true
	case before <= 0 && after > 0:
		return AlertBackInStock, true
	case before > threshold && after <= threshold && after > 0:
		return AlertLowStock, true
	}
	return "", false
}
