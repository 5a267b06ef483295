package elastic

// Document is a product as the Elasticsearch index holds it: what searches match, filter,
// facet and sort on, denormalized from the product, its brand and its category path.
// Every product has one, whatever its status: a product that is not ACTIVE stays in the
// index with its version (a soft delete), so that a late write of an older version is
// refused instead of bringing it back.
type Document struct {
	ProductID   string `json:"product_id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Suggest holds the lowercase name from the start of each of its words, for
	// autocompletion of a prefix of any word ("din" finds "Oak Dining Table").
	Suggest    []string `json:"suggest"`
	Brand      string   `json:"brand,omitempty"`
	BrandID    string   `json:"brand_id,omitempty"`
	BrandFacet string   `json:"brand_facet,omitempty"` // "id|name": the facet's value and label
	Category   string   `json:"category"`
	CategoryID string   `json:"category_id"`
	// CategoryPath holds the ids from the root down to the product's category: a filter on
	// a category matches its descendants, and the facet counts every ancestor.
	CategoryPath  []string `json:"category_path"`
	CategoryFacet []string `json:"category_facet"` // "id|name" of each category of the path
	PriceCents    int64    `json:"price_cents"`
	CostCents     int64    `json:"cost_cents"`
	// Margin is (price - cost) / price, at least 0: the margin boost of relevance.
	Margin     float64 `json:"margin"`
	Rating     float64 `json:"rating"`
	Popularity int64   `json:"popularity"`
	// CreatedUS is created_at in Unix microseconds, PostgreSQL's precision, so that the
	// NEWEST sort and its cursors order exactly as in PostgreSQL.
	CreatedUS int64  `json:"created_us"`
	Status    string `json:"status"`
	Version   int64  `json:"version"`
	// Attrs are the scalar attributes as text (numbers and booleans as their JSON text),
	// AttrKeys their keys: what attribute filters, facets and their coverage read.
	Attrs    map[string]string `json:"attrs"`
	AttrKeys []string          `json:"attr_keys"`
}

// Active says whether searches find the document.
func (d *Document) Active() bool { return d.Status == "ACTIVE" }

// IDVersion is a product id with its row version.
type IDVersion struct {
	ID      string
	Version int64
}
