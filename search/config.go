package search

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/homegoods/storefront/graph/model"
)

// Config holds what both engines share about facets.
type Config struct {
	// PriceBounds are the lower bounds of the price ranges, ascending, in cents: the last
	// range is open above.
	PriceBounds []model.Cents
	// RatingSteps are the "at least" thresholds of the rating facet, in display order.
	RatingSteps []float64
	// AttributeKeys are the attribute keys that may become facets, with their labels.
	AttributeKeys []AttributeKey
	// FacetValues caps the values of a TERMS facet.
	FacetValues int
	// AttributeFacets caps how many attribute facets a result shows.
	AttributeFacets int
}

// AttributeKey is an attribute that may be faceted on.
type AttributeKey struct {
	Key   string
	Label string
}

// DefaultConfig returns the facets of a home-goods shop.
func DefaultConfig() Config {
	return Config{
		PriceBounds: []model.Cents{0, 2500, 5000, 10000, 25000, 50000, 100000, 250000},
		RatingSteps: []float64{4, 3, 2, 1},
		AttributeKeys: []AttributeKey{
			{"color", "Color"}, {"material", "Material"}, {"finish", "Finish"}, {"size", "Size"},
			{"shape", "Shape"}, {"style", "Style"}, {"pile_height", "Pile height"},
			{"thread_count", "Thread count"}, {"wattage", "Wattage"}, {"bulb_type", "Bulb type"},
			{"color_temperature_k", "Color temperature (K)"}, {"dimmable", "Dimmable"},
			{"weather_resistant", "Weather resistant"}, {"assembly_required", "Assembly required"},
		},
		FacetValues:     20,
		AttributeFacets: 6,
	}
}

// AttributeLabel returns the label of a facetable attribute key and whether it is one.
func (c Config) AttributeLabel(key string) (string, bool) {
	for _, k := range c.AttributeKeys {
		if k.Key == key {
			return k.Label, true
		}
	}
	return "", false
}

// PriceRanges returns the ranges of the price facet: [bounds[i], bounds[i+1]), the last
// one open above.
func (c Config) PriceRanges() []model.PriceRange {
	out := make([]model.PriceRange, len(c.PriceBounds))
	for i := range c.PriceBounds {
		lo := c.PriceBounds[i]
		out[i].Min = &lo
		if i+1 < len(c.PriceBounds) {
			hi := c.PriceBounds[i+1]
			out[i].Max = &hi
		}
	}
	return out
}

// PriceValue is the facet value naming a price range: "lo-hi" in cents, "lo-" when open.
func PriceValue(r model.PriceRange) string {
	var b strings.Builder
	if r.Min != nil {
		b.WriteString(strconv.FormatInt(int64(*r.Min), 10))
	}
	b.WriteByte('-')
	if r.Max != nil {
		b.WriteString(strconv.FormatInt(int64(*r.Max), 10))
	}
	return b.String()
}

// PriceLabel reads a price range as a shopper would: "$50 to $100", "$2,500 and up".
func PriceLabel(r model.PriceRange) string {
	switch {
	case r.Min != nil && r.Max != nil && *r.Min == 0:
		return "Under " + dollars(*r.Max)
	case r.Min != nil && r.Max != nil:
		return dollars(*r.Min) + " to " + dollars(*r.Max)
	case r.Min != nil:
		return dollars(*r.Min) + " and up"
	case r.Max != nil:
		return "Under " + dollars(*r.Max)
	}
	return "Any price"
}

// RatingValue names the rating step r: "4" means at least 4.
func RatingValue(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) }

// RatingLabel reads a rating step: "4 stars & up".
func RatingLabel(r float64) string { return RatingValue(r) + " stars & up" }

// dollars formats whole dollars with thousands separators, cents only when there are some.
func dollars(c model.Cents) string {
	whole, frac := int64(c)/100, int64(c)%100
	s := strconv.FormatInt(whole, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if frac != 0 {
		return fmt.Sprintf("$%s.%02d", s, frac)
	}
	return "$" + s
}
