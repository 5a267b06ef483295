package model

import "time"

// OrderFilter narrows an order listing.
type OrderFilter struct {
	// CustomerID limits the listing to one customer's orders (myOrders sets it).
	CustomerID *string
	Status     []OrderStatus
	// From and To bound created_at: From inclusive, To exclusive.
	From *time.Time
	To   *time.Time
}

// OrderConnection is one page of orders, newest first.
type OrderConnection struct {
	Edges    []*OrderEdge
	PageInfo *PageInfo
}

// OrderEdge is one order of a page with its cursor.
type OrderEdge struct {
	Cursor string
	Node   *Order
}
