package model

import "strings"

// Global ids name their type, in the style of gid://storefront/Product/<uuid>: opaque to
// clients, readable to people in the playground, and decodable without a database lookup.
const gidPrefix = "gid://storefront/"

// The types that have global ids.
const (
	TypeProduct   = "Product"
	TypeCategory  = "Category"
	TypeBrand     = "Brand"
	TypeWarehouse = "Warehouse"
)

// GlobalID returns the global id of the object of type typ with database id id.
func GlobalID(typ, id string) string {
	return gidPrefix + typ + "/" + id
}

// ParseGlobalID splits a global id into its type and database id.
func ParseGlobalID(gid string) (typ, id string, ok bool) {
	rest, found := strings.CutPrefix(gid, gidPrefix)
	if !found {
		return "", "", false
	}
	typ, id, found = strings.Cut(rest, "/")
	return typ, id, found && IsUUID(id)
}

// GlobalID is the product's id in the API.
func (p *Product) GlobalID() string { return GlobalID(TypeProduct, p.ID) }

// GlobalID is the category's id in the API.
func (c *Category) GlobalID() string { return GlobalID(TypeCategory, c.ID) }

// GlobalID is the brand's id in the API.
func (b *Brand) GlobalID() string { return GlobalID(TypeBrand, b.ID) }

// GlobalID is the warehouse's id in the API.
func (w *Warehouse) GlobalID() string { return GlobalID(TypeWarehouse, w.ID) }

// TypeOrder and TypeCart name orders and customers' carts in global ids.
const (
	TypeOrder = "Order"
	TypeCart  = "Cart"
)

// GlobalID is the order's id in the API.
func (o *Order) GlobalID() string { return GlobalID(TypeOrder, o.ID) }

// IsNode marks orders as fetchable by Query.node (for those allowed to read them).
func (Order) IsNode() {}
