package search

import (
	"slices"
	"sort"
	"strings"

	"github.com/homegoods/storefront/graph/model"
)

// FacetCounts turns raw disjunctive counts into the facets of the package's semantics:
// which values and keys are shown, in which order, and which are selected. It knows
// nothing of where the counts come from (a PostgreSQL statement or Elasticsearch
// aggregations), so that every engine presents facets the same way.
type FacetCounts struct {
	terms    map[string][]model.FacetValue // "category" and "brand" values with their counts
	price    map[int]int                   // by index of Config.PriceRanges()
	ratings  []ratingCount                 // products by exact rating
	attrs    map[string]map[string]int     // attribute key → value → count
	coverage map[string]int                // attribute key → products of the result with it
}

type ratingCount struct {
	rating float64
	n      int
}

func NewFacetCounts() *FacetCounts {
	return &FacetCounts{terms: map[string][]model.FacetValue{}, price: map[int]int{},
		attrs: map[string]map[string]int{}, coverage: map[string]int{}}
}

// AddTerm counts a value of the category or brand facet (each filter but the facet's own).
func (c *FacetCounts) AddTerm(facet, value, label string, n int) {
	c.terms[facet] = append(c.terms[facet], model.FacetValue{Value: value, Label: label, Count: n})
}

// AddPrice counts products in price range i (each filter but the price's).
func (c *FacetCounts) AddPrice(i, n int) { c.price[i] += n }

// AddRating counts products rated exactly rating (each filter but the rating's).
func (c *FacetCounts) AddRating(rating float64, n int) {
	c.ratings = append(c.ratings, ratingCount{rating, n})
}

// AddAttribute counts products with an attribute value. inResult: the products pass every
// filter, so they also make the key's coverage; otherwise they fail only this key's own
// filter.
func (c *FacetCounts) AddAttribute(key, value string, n int, inResult bool) {
	if c.attrs[key] == nil {
		c.attrs[key] = map[string]int{}
	}
	c.attrs[key][value] += n
	if inResult {
		c.coverage[key] += n
	}
}

// Facets returns category, brand, price and rating, then the attribute facets.
func (c *FacetCounts) Facets(cfg Config, f model.SearchFilter) []model.Facet {
	out := []model.Facet{
		termsFacet(cfg, model.FacetCategory, "Category", c.terms[model.FacetCategory], f.CategoryIDs),
		termsFacet(cfg, model.FacetBrand, "Brand", c.terms[model.FacetBrand], f.BrandIDs),
		c.priceFacet(cfg, f.Price),
		c.ratingFacet(cfg, f.MinRating),
	}
	return append(out, c.attributeFacets(cfg, f.Attributes)...)
}

// termsFacet keeps the FacetValues values of highest count (ties by value), selected when
// the filter has them (ids compared case-insensitively).
func termsFacet(cfg Config, key, label string, values []model.FacetValue, selected []string) model.Facet {
	values = topValues(values, cfg.FacetValues)
	for i := range values {
		values[i].Selected = slices.ContainsFunc(selected, func(s string) bool { return strings.EqualFold(s, values[i].Value) })
	}
	return model.Facet{Key: key, Label: label, Kind: model.FacetKindTerms, Values: values}
}

// topValues sorts values with a count by count desc then value asc, and keeps max.
func topValues(values []model.FacetValue, max int) []model.FacetValue {
	values = slices.DeleteFunc(slices.Clone(values), func(v model.FacetValue) bool { return v.Count <= 0 })
	sort.Slice(values, func(i, j int) bool {
		if values[i].Count != values[j].Count {
			return values[i].Count > values[j].Count
		}
		return values[i].Value < values[j].Value
	})
	if len(values) > max {
		values = values[:max]
	}
	if values == nil {
		values = []model.FacetValue{}
	}
	return values
}

// priceFacet lists every configured range, zero counts included; the selected one is the
// filter's range exactly.
func (c *FacetCounts) priceFacet(cfg Config, sel *model.PriceRange) model.Facet {
	ranges := cfg.PriceRanges()
	values := make([]model.FacetValue, len(ranges))
	for i, r := range ranges {
		values[i] = model.FacetValue{Value: PriceValue(r), Label: PriceLabel(r), Count: c.price[i],
			Selected: sel != nil && PriceValue(*sel) == PriceValue(r)}
	}
	return model.Facet{Key: model.FacetPrice, Label: "Price", Kind: model.FacetKindRange, Values: values}
}

// ratingFacet counts "at least r" for each step, zero counts included; the selected step is
// the filter's minimum.
func (c *FacetCounts) ratingFacet(cfg Config, sel *float64) model.Facet {
	values := make([]model.FacetValue, len(cfg.RatingSteps))
	for i, step := range cfg.RatingSteps {
		n := 0
		for _, r := range c.ratings {
			if r.rating >= step {
				n += r.n
			}
		}
		values[i] = model.FacetValue{Value: RatingValue(step), Label: RatingLabel(step), Count: n,
			Selected: sel != nil && *sel == step}
	}
	return model.Facet{Key: model.FacetRating, Label: "Rating", Kind: model.FacetKindRange, Values: values}
}

// attributeFacets shows the filtered keys and, up to AttributeFacets keys in all, the keys
// of highest coverage; a key no product of the result has is shown only when filtered.
// They are ordered by coverage desc, then key.
func (c *FacetCounts) attributeFacets(cfg Config, filters []model.AttributeFilter) []model.Facet {
	selected := map[string][]string{}
	for _, a := range filters {
		selected[a.Key] = a.Values
	}
	var keys []string
	for _, k := range cfg.AttributeKeys {
		if _, ok := selected[k.Key]; ok || c.coverage[k.Key] > 0 {
			keys = append(keys, k.Key)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if c.coverage[keys[i]] != c.coverage[keys[j]] {
			return c.coverage[keys[i]] > c.coverage[keys[j]]
		}
		return keys[i] < keys[j]
	})
	room := cfg.AttributeFacets - len(selected)
	out := []model.Facet{}
	for _, k := range keys {
		_, isSelected := selected[k]
		if !isSelected {
			if room <= 0 {
				continue
			}
			room--
		}
		out = append(out, c.attributeFacet(cfg, k, selected[k]))
	}
	return out
}

func (c *FacetCounts) attributeFacet(cfg Config, key string, selected []string) model.Facet {
	values := make([]model.FacetValue, 0, len(c.attrs[key]))
	for v, n := range c.attrs[key] {
		values = append(values, model.FacetValue{Value: v, Label: v, Count: n})
	}
	values = topValues(values, cfg.FacetValues)
	for i := range values {
		values[i].Selected = slices.Contains(selected, values[i].Value)
	}
	label, _ := cfg.AttributeLabel(key)
	return model.Facet{Key: model.AttributeFacetPrefix + key, Label: label, Kind: model.FacetKindTerms, Values: values}
}

// AddCoverage counts products of the result that have an attribute key, when its values
// are counted apart (a filtered key: its values count every filter but its own).
func (c *FacetCounts) AddCoverage(key string, n int) { c.coverage[key] += n }
