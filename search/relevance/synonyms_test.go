package relevance

import (
	"slices"
	"testing"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
)

func TestSynonymSpans(t *testing.T) {
	set := NewSynonymSet([]*model.SynonymRule{
		{Kind: model.SynonymEquivalent, Terms: []string{"couch", "sofa", "settee"}},
		{Kind: model.SynonymOneWay, Terms: []string{"loveseat"}, Synonyms: []string{"sofa", "small sofa"}},
		{Kind: model.SynonymEquivalent, Terms: []string{"area rug", "carpet"}},
		{Kind: model.SynonymEquivalent, Terms: []string{"rug", "mat"}},
	})
	for _, c := range []struct {
		text string
		want map[int]SynonymSpan
	}{
		{"grey couch", map[int]SynonymSpan{1: {1, []string{"sofa", "settee"}}}},
		{"loveseat", map[int]SynonymSpan{0: {1, []string{"sofa", "small sofa"}}}},
		{"sofa", map[int]SynonymSpan{0: {1, []string{"couch", "settee"}}}}, // ONE_WAY synonyms do not reverse
		{"wool area rug", map[int]SynonymSpan{1: {2, []string{"carpet"}}}}, // the longest term wins
		{"rug area", map[int]SynonymSpan{0: {1, []string{"mat"}}}},
		{"table", map[int]SynonymSpan{}},
	} {
		got := set.Spans(search.Words(c.text))
		if len(got) != len(c.want) {
			t.Errorf("spans(%q) = %v; want %v", c.text, got, c.want)
			continue
		}
		for i, w := range c.want {
			if g := got[i]; g.N != w.N || !slices.Equal(g.Alts, w.Alts) {
				t.Errorf("spans(%q)[%d] = %v; want %v", c.text, i, g, w)
			}
		}
	}
}
