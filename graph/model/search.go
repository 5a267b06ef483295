package model

import "time"

// SearchSort orders search results. Every sort breaks ties by product id ascending, so that
// cursors are stable and both engines return the same order.
type SearchSort string

// The search sorts.
const (
	SearchSortRelevance  SearchSort = "RELEVANCE"  // score desc (browse without text: popularity desc)
	SearchSortPriceAsc   SearchSort = "PRICE_ASC"  // price asc
	SearchSortPriceDesc  SearchSort = "PRICE_DESC" // price desc
	SearchSortNewest     SearchSort = "NEWEST"     // created_at desc
	SearchSortPopularity SearchSort = "POPULARITY" // popularity desc
)

// FacetKind says how a facet's values are built.
type FacetKind string

// The facet kinds.
const (
	FacetKindTerms FacetKind = "TERMS" // one value per distinct term, counted
	FacetKindRange FacetKind = "RANGE" // configured ranges, each counted
)

// The fixed facet keys; attribute facets are AttributeFacetPrefix + the attribute key.
const (
	FacetCategory        = "category"
	FacetBrand           = "brand"
	FacetPrice           = "price"
	FacetRating          = "rating"
	AttributeFacetPrefix = "attr."
)

// SearchQuery is one search: words, filters, a sort and a page.
type SearchQuery struct {
	// Text is what the customer typed; "" browses by filters alone. It is matched as words,
	// never parsed as a query language.
	Text   string
	Filter SearchFilter
	Sort   SearchSort
	First  int
	// After is the EndCursor of the previous page of the same query, or "".
	After string
	// Weights tune the relevance sort (popularity, recency, margin boosts).
	Weights RelevanceWeights
	// Boosts multiply the score of matching products for this query (relevance sort only).
	Boosts []SearchBoost
	// ExcludeIDs are left out of the results and of every count (the pinned products, which
	// the caller shows itself).
	ExcludeIDs []string
}

// SearchFilter narrows a search. Values of one facet are ORed, facets are ANDed. Only ACTIVE
// products are ever found.
type SearchFilter struct {
	// CategoryIDs (facet "category") match a product whose category is one of them or lies
	// below one of them.
	CategoryIDs []string
	BrandIDs    []string // facet "brand"
	// Price (facet "price") is a half-open range [Min, Max) in cents; either end may be open.
	Price *PriceRange
	// MinRating (facet "rating") keeps products rated at least this.
	MinRating *float64
	// Attributes (facets "attr.<key>") keep products whose attribute key has one of the
	// values, compared as text (numbers and booleans as their JSON text: "60", "true").
	Attributes []AttributeFilter
}

// PriceRange is a half-open price range [Min, Max); nil ends are open.
type PriceRange struct {
	Min *Cents
	Max *Cents
}

// AttributeFilter selects values of one attribute key.
type AttributeFilter struct {
	Key    string
	Values []string
}

// RelevanceWeights are the merchandiser's boosts on top of text relevance; 0 turns one off.
type RelevanceWeights struct {
	Popularity float64
	Recency    float64
	Margin     float64
}

// SearchBoost multiplies the relevance of products of a brand or a category (with its
// descendants) by Factor for one query.
type SearchBoost struct {
	BrandID    string
	CategoryID string
	Factor     float64
}

// SearchResult is a page of search results with the facets of the whole result.
type SearchResult struct {
	Total      int
	Hits       []SearchHit
	Facets     []Facet
	PriceRange *PriceStats // nil when nothing matched
	PageInfo   PageInfo
	// Backend names the engine that answered: "elasticsearch" or "postgres".
	Backend string
	// Degraded is set when the preferred engine failed and the fallback answered.
	Degraded bool
}

// Copy returns a copy of r whose hits, facets and facet values can be changed without
// changing r's, which a cache may share between requests.
func (r *SearchResult) Copy() *SearchResult {
	c := *r
	c.Hits = append([]SearchHit(nil), r.Hits...)
	c.Facets = make([]Facet, len(r.Facets))
	for i, f := range r.Facets {
		f.Values = append([]FacetValue(nil), f.Values...)
		c.Facets[i] = f
	}
	return &c
}

// SearchHit is one product found, with its cursor and highlighted fragments.
type SearchHit struct {
	ProductID  string
	Cursor     string
	Highlights []Highlight
	// Pinned marks a product a merchandiser pinned for the query (set by the service).
	Pinned bool
}

// Highlight holds fragments of a field with the matched words wrapped in <em></em>.
type Highlight struct {
	Field     string
	Fragments []string
}

// PriceStats is the lowest and highest price of a result.
type PriceStats struct {
	Min Cents
	Max Cents
}

// Facet is one facet of a result: disjunctive, its counts ignore its own selection.
type Facet struct {
	Key    string
	Label  string
	Kind   FacetKind
	Values []FacetValue
}

// FacetValue is one value of a facet with how many products of the result it would give.
type FacetValue struct {
	Value    string
	Label    string
	Count    int
	Selected bool
}

// Suggestion is an autocomplete proposal: a product name that starts with the prefix.
type Suggestion struct {
	Text      string
	ProductID string
}

// SearchQueryStat counts how often a query was searched and when last.
type SearchQueryStat struct {
	Query    string
	Count    int
	LastSeen time.Time
}

// SynonymKind says which way a synonym rule works.
type SynonymKind string

// The synonym kinds.
const (
	// SynonymEquivalent makes every term of Terms find the others ("sofa, couch, settee").
	SynonymEquivalent SynonymKind = "EQUIVALENT"
	// SynonymOneWay makes each term of Terms also find Synonyms, not the reverse
	// ("loveseat => sofa").
	SynonymOneWay SynonymKind = "ONE_WAY"
)

// SynonymRule is one merchandiser synonym rule. Terms are lowercase words or phrases.
type SynonymRule struct {
	ID       string
	Kind     SynonymKind
	Terms    []string
	Synonyms []string // ONE_WAY only
}

// QueryRule is what a merchandiser set for one query: products pinned at the top (in order)
// and boosts. Query is normalized: lowercase, single spaces, trimmed.
type QueryRule struct {
	Query            string
	PinnedProductIDs []string
	Boosts           []SearchBoost
}

// SearchInsights tells merchandisers what shoppers search for.
type SearchInsights struct {
	TopQueries        []SearchQueryStat
	ZeroResultQueries []SearchQueryStat
}
