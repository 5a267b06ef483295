package model

// MaxPageSize bounds first and last on every connection.
const MaxPageSize = 100

// DefaultPageSize applies when neither first nor last is given.
const DefaultPageSize = 20

// ProductFilter narrows a product listing. Ids are raw database ids here; the API decodes
// global ids before the filter reaches the store.
type ProductFilter struct {
	// CategoryID matches the category and all its descendants.
	CategoryID *string
	BrandIDs   []string
	MinPrice   *Cents
	MaxPrice   *Cents
	Status     []ProductStatus
	// Attributes matches products whose attributes contain this object (JSONB @>).
	Attributes map[string]any
}

// Page is a keyset page request: Limit rows after (or, with Backward, before) Cursor.
type Page struct {
	Limit    int
	Cursor   string
	Backward bool
}

// ProductConnection is one page of products.
type ProductConnection struct {
	Edges    []*ProductEdge
	PageInfo *PageInfo
	// Filter is what produced the page; totalCount is counted with it only when asked for.
	Filter ProductFilter
}

// ProductEdge is one product of a page with its cursor.
type ProductEdge struct {
	Cursor string
	Node   *Product
}

// PageInfo follows the Relay connection specification.
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}
