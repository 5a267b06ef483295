// Package search is the contract of product search: the Engine interface, the query's
// validation, cursors and facet presentation every engine shares, and the Service that
// resolvers search through (validation, relevance controls, a breaker in front of the
// primary engine and the fallback behind it). The engines are its subpackages, unaware of
// each other: search/elastic (Elasticsearch or OpenSearch, fed by search/indexer from the
// change feed) and search/postgres (PostgreSQL full-text search, always available);
// search/relevance holds the merchandisers' controls, and search/searchtest the
// conformance suite every engine passes. PostgreSQL is always the source of truth.
//
// Every engine implements these semantics, checked by the conformance suite:
//
//   - Only ACTIVE products are found. Text is matched as words (stemmed English, synonyms,
//     typo tolerance), never parsed as a query language.
//   - Filters: values of one facet are ORed, facets are ANDed (see model.SearchFilter).
//   - Facets are disjunctive: each facet's counts apply every selected filter except its
//     own, so that selecting "oak" still counts the other materials.
//   - Facet "category" counts each product under its category and every ancestor; "brand"
//     under its brand (products without a brand are not counted). Both are TERMS facets:
//     values with a count above zero, by count desc then value asc, at most
//     Config.FacetValues of them.
//   - Facet "price" is a RANGE facet over Config.PriceBounds: value "lo-hi" (cents, hi
//     exclusive, the last "lo-"), every range listed in order, zero counts included.
//     Facet "rating" is a RANGE facet of "at least r" for r in Config.RatingSteps, in that
//     order, zero counts included.
//   - Attribute facets "attr.<key>" for the keys of Config.AttributeKeys: TERMS over the
//     attribute's text value. A key's coverage is how many products of the result (every
//     filter applied) have it; shown are the selected keys plus the keys of highest
//     coverage (ties by key) up to Config.AttributeFacets keys in all, keys of zero
//     coverage never unless selected; ordered by coverage desc, key asc.
//   - PriceRange is the min and max price of the result, every filter applied.
//   - Sorts break ties by product id ascending; cursors are opaque and hold the sort values
//     of the last hit (search_after), so a page never repeats or skips a product.
package search

import (
	"context"

	"github.com/homegoods/storefront/graph/model"
)

// Engine answers searches. Implementations must follow the package's semantics.
type Engine interface {
	// Name is "elasticsearch" or "postgres": the backend named in results.
	Name() string
	Search(ctx context.Context, q model.SearchQuery) (*model.SearchResult, error)
	// Suggest returns up to limit active product names starting with prefix (a word prefix
	// of the name), most popular first.
	Suggest(ctx context.Context, prefix string, limit int) ([]model.Suggestion, error)
}
