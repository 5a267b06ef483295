package search

import (
	"fmt"
	"unicode/utf8"

	"github.com/homegoods/storefront/graph/model"
)

// Limits on what a search may ask: beyond them the query is refused as BAD_USER_INPUT
// before any engine sees it.
const (
	MaxTextLength   = 200 // characters of query text
	MaxFilterValues = 50  // values of one facet's filter
	MaxAttributeKey = 20  // attribute keys filtered at once
	MaxFirst        = 100 // results per page
	DefaultFirst    = 20
	MaxPrefixLength = 50 // characters of an autocomplete prefix

	MaxBoosts      = 20  // boosts of one query
	MaxWeight      = 10  // of each relevance weight
	MaxBoostFactor = 100 // of a boost
)

// Validate checks q against the limits and c's facets, and fills its defaults.
func (c Config) Validate(q *model.SearchQuery) error {
	if n := utf8.RuneCountInString(q.Text); n > MaxTextLength {
		return BadInput("query", "the query is %d characters long: at most %d are searched", n, MaxTextLength)
	}
	if !utf8.ValidString(q.Text) {
		return BadInput("query", "the query is not valid UTF-8")
	}
	switch {
	case q.First == 0:
		q.First = DefaultFirst
	case q.First < 0 || q.First > MaxFirst:
		return BadInput("first", "first must be between 1 and %d", MaxFirst)
	}
	if q.Sort == "" {
		q.Sort = model.SearchSortRelevance
	}
	if err := c.validateFilter(q.Filter); err != nil {
		return err
	}
	return validateRelevance(q)
}

// SuggestPrefix checks an autocomplete request and returns its prefix normalized.
func SuggestPrefix(prefix string, limit int) (string, error) {
	if n := utf8.RuneCountInString(prefix); n > MaxPrefixLength {
		return "", BadInput("prefix", "the prefix is %d characters long: at most %d", n, MaxPrefixLength)
	}
	if limit < 1 || limit > MaxFirst {
		return "", BadInput("first", "first must be between 1 and %d", MaxFirst)
	}
	return Normalize(prefix), nil
}

// validateRelevance checks what the service sets from the merchandisers' controls: an
// excluded id that is not one would otherwise exclude everything (x <> ALL of a NULL).
func validateRelevance(q *model.SearchQuery) error {
	if err := checkIDs("excludeIds", q.ExcludeIDs); err != nil {
		return err
	}
	if err := CheckWeights("weights", q.Weights); err != nil {
		return err
	}
	return CheckBoosts("boosts", q.Boosts)
}

func (c Config) validateFilter(f model.SearchFilter) error {
	if err := checkIDs("filter.categoryIds", f.CategoryIDs); err != nil {
		return err
	}
	if err := checkIDs("filter.brandIds", f.BrandIDs); err != nil {
		return err
	}
	if p := f.Price; p != nil {
		if (p.Min != nil && *p.Min < 0) || (p.Max != nil && *p.Max < 0) {
			return BadInput("filter.price", "prices must not be negative")
		}
		if p.Min != nil && p.Max != nil && *p.Max <= *p.Min {
			return BadInput("filter.price", "the price range is empty: max must be above min")
		}
	}
	if r := f.MinRating; r != nil && (*r < 0 || *r > 5) {
		return BadInput("filter.minRating", "minRating must be between 0 and 5")
	}
	if len(f.Attributes) > MaxAttributeKey {
		return BadInput("filter.attributes", "at most %d attributes can be filtered at once", MaxAttributeKey)
	}
	seen := map[string]bool{}
	for _, a := range f.Attributes {
		if _, ok := c.AttributeLabel(a.Key); !ok {
			return BadInput("filter.attributes", "unknown facet %q", a.Key)
		}
		if seen[a.Key] {
			return BadInput("filter.attributes", "attribute %q is filtered twice", a.Key)
		}
		seen[a.Key] = true
		if len(a.Values) == 0 || len(a.Values) > MaxFilterValues {
			return BadInput("filter.attributes", "attribute %q needs 1 to %d values", a.Key, MaxFilterValues)
		}
	}
	return nil
}

func checkIDs(arg string, ids []string) error {
	if len(ids) > MaxFilterValues {
		return BadInput(arg, "at most %d values can be selected", MaxFilterValues)
	}
	for _, id := range ids {
		if !model.IsUUID(id) {
			return BadInput(arg, "%q is not an id", id)
		}
	}
	return nil
}

// BadInput is the BAD_USER_INPUT error of argument arg.
func BadInput(arg, format string, a ...any) error {
	return &model.Error{Code: model.CodeBadUserInput, Message: fmt.Sprintf(format, a...), Argument: arg}
}

// CheckWeights refuses weights outside [0, MaxWeight] (NaN included).
func CheckWeights(arg string, w model.RelevanceWeights) error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"popularity", w.Popularity}, {"recency", w.Recency}, {"margin", w.Margin}} {
		if !(f.v >= 0 && f.v <= MaxWeight) {
			return BadInput(arg+"."+f.name, "weights are between 0 and %d", MaxWeight)
		}
	}
	return nil
}

// CheckBoosts refuses more than MaxBoosts boosts, a boost that does not name exactly one
// brand or category id, and factors outside (0, MaxBoostFactor].
func CheckBoosts(arg string, boosts []model.SearchBoost) error {
	if len(boosts) > MaxBoosts {
		return BadInput(arg, "at most %d boosts", MaxBoosts)
	}
	for _, b := range boosts {
		if (b.BrandID == "") == (b.CategoryID == "") {
			return BadInput(arg, "a boost names exactly one of a brand and a category")
		}
		if id := b.BrandID + b.CategoryID; !model.IsUUID(id) {
			return BadInput(arg, "%q is not an id", id)
		}
		if !(b.Factor > 0 && b.Factor <= MaxBoostFactor) {
			return BadInput(arg, "a boost factor is above 0 and at most %d", MaxBoostFactor)
		}
	}
	return nil
}
