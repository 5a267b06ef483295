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
)

// Validate checks q against the limits and c's facets, and fills its defaults.
func (c Config) Validate(q *model.SearchQuery) error {
	if n := utf8.RuneCountInString(q.Text); n > MaxTextLength {
		return badInput("query", "the query is %d characters long: at most %d are searched", n, MaxTextLength)
	}
	if !utf8.ValidString(q.Text) {
		return badInput("query", "the query is not valid UTF-8")
	}
	switch {
	case q.First == 0:
		q.First = DefaultFirst
	case q.First < 0 || q.First > MaxFirst:
		return badInput("first", "first must be between 1 and %d", MaxFirst)
	}
	if q.Sort == "" {
		q.Sort = model.SearchSortRelevance
	}
	if err := c.validateFilter(q.Filter); err != nil {
		return err
	}
	return validateRelevance(q)
}

// validateRelevance checks what the service sets from the merchandisers' controls: an
// excluded id that is not one would otherwise exclude everything (x <> ALL of a NULL).
func validateRelevance(q *model.SearchQuery) error {
	if err := checkIDs("excludeIds", q.ExcludeIDs); err != nil {
		return err
	}
	if err := checkWeights("weights", q.Weights); err != nil {
		return err
	}
	return checkBoosts("boosts", q.Boosts)
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
			return badInput("filter.price", "prices must not be negative")
		}
		if p.Min != nil && p.Max != nil && *p.Max <= *p.Min {
			return badInput("filter.price", "the price range is empty: max must be above min")
		}
	}
	if r := f.MinRating; r != nil && (*r < 0 || *r > 5) {
		return badInput("filter.minRating", "minRating must be between 0 and 5")
	}
	if len(f.Attributes) > MaxAttributeKey {
		return badInput("filter.attributes", "at most %d attributes can be filtered at once", MaxAttributeKey)
	}
	seen := map[string]bool{}
	for _, a := range f.Attributes {
		if _, ok := c.AttributeLabel(a.Key); !ok {
			return badInput("filter.attributes", "unknown facet %q", a.Key)
		}
		if seen[a.Key] {
			return badInput("filter.attributes", "attribute %q is filtered twice", a.Key)
		}
		seen[a.Key] = true
		if len(a.Values) == 0 || len(a.Values) > MaxFilterValues {
			return badInput("filter.attributes", "attribute %q needs 1 to %d values", a.Key, MaxFilterValues)
		}
	}
	return nil
}

func checkIDs(arg string, ids []string) error {
	if len(ids) > MaxFilterValues {
		return badInput(arg, "at most %d values can be selected", MaxFilterValues)
	}
	for _, id := range ids {
		if !model.IsUUID(id) {
			return badInput(arg, "%q is not an id", id)
		}
	}
	return nil
}

func badInput(arg, format string, a ...any) error {
	return &model.Error{Code: model.CodeBadUserInput, Message: fmt.Sprintf(format, a...), Argument: arg}
}
