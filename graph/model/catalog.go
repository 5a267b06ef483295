package model

import (
	"fmt"
	"sort"
	"strconv"
	"time"
)

// Product is a sellable item of the catalog.
type Product struct {
	ID          string
	SKU         string
	Slug        string
	Name        string
	Description string
	CategoryID  string
	BrandID     *string
	Price       Money
	Cost        Money
	Status      ProductStatus
	Attributes  map[string]any
	Popularity  int
	Rating      float64
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// AttributeList returns the attributes as typed key/value pairs, sorted by key.
func (p *Product) AttributeList() []*ProductAttribute {
	out := make([]*ProductAttribute, 0, len(p.Attributes))
	for k, v := range p.Attributes {
		out = append(out, newAttribute(k, v))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// ProductAttribute is one attribute of a product with its kind made explicit.
type ProductAttribute struct {
	Key     string
	Kind    AttributeKind
	Text    string
	Number  *float64
	Boolean *bool
}

func newAttribute(key string, v any) *ProductAttribute {
	a := &ProductAttribute{Key: key, Kind: AttributeKindString}
	switch v := v.(type) {
	case string:
		a.Text = v
	case float64:
		a.Kind, a.Number, a.Text = AttributeKindNumber, &v, strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		a.Kind, a.Boolean, a.Text = AttributeKindBoolean, &v, strconv.FormatBool(v)
	default:
		a.Text = fmt.Sprint(v)
	}
	return a
}

// Category is a node of the category tree.
type Category struct {
	ID       string
	ParentID *string
	Slug     string
	Name     string
	// Path holds the ids from the root down to this category, itself included.
	Path      []string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Depth is 0 for a top-level category.
func (c *Category) Depth() int { return len(c.Path) - 1 }

// Brand is a product's maker or label.
type Brand struct {
	ID        string
	Slug      string
	Name      string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Warehouse holds stock.
type Warehouse struct {
	ID       string
	Code     string
	Name     string
	Priority int
}

// InventoryLevel is the stock of one product in one warehouse.
type InventoryLevel struct {
	ProductID string
	Warehouse *Warehouse
	Quantity  int
	Reserved  int
	Available int
	// LowStockThreshold: at or below it (and above zero) the stock is low.
	LowStockThreshold int
	UpdatedAt         time.Time
}

// Availability sums a product's stock across warehouses.
type Availability struct {
	InStock   bool
	Available int
}

// IsNode marks the types that Query.node can return.
func (Product) IsNode()   {}
func (Category) IsNode()  {}
func (Brand) IsNode()     {}
func (Warehouse) IsNode() {}

// IsUUID reports whether s is a UUID in its canonical textual form.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case '0' <= r && r <= '9', 'a' <= r && r <= 'f', 'A' <= r && r <= 'F':
		default:
			return false
		}
	}
	return true
}
