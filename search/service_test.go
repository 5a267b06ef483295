package search

import (
	"testing"

	"github.com/homegoods/storefront/graph/model"
)

// TestCacheKey: queries that differ only in how the words are typed or the order of filter
// values share a cached result; any other difference does not.
func TestCacheKey(t *testing.T) {
	base := model.SearchQuery{Text: "Oak  Table", Sort: model.SearchSortRelevance, First: 20,
		Filter: model.SearchFilter{CategoryIDs: []string{"c2", "c1"}, Attributes: []model.AttributeFilter{
			{Key: "material", Values: []string{"oak", "ash"}}, {Key: "color", Values: []string{"natural"}}}}}
	same := base
	same.Text = "oak table"
	same.Filter = model.SearchFilter{CategoryIDs: []string{"c1", "c2"}, Attributes: []model.AttributeFilter{
		{Key: "color", Values: []string{"natural"}}, {Key: "material", Values: []string{"ash", "oak"}}}}
	if cacheKey(base) != cacheKey(same) {
		t.Errorf("cacheKey differs for the same query typed otherwise:\n%s\n%s", cacheKey(base), cacheKey(same))
	}
	if base.Filter.CategoryIDs[0] != "c2" || base.Filter.Attributes[0].Values[0] != "oak" {
		t.Error("cacheKey reordered the query's own filter")
	}
	rating := 4.0
	for name, change := range map[string]func(*model.SearchQuery){
		"words":  func(q *model.SearchQuery) { q.Text = "oak tables" },
		"sort":   func(q *model.SearchQuery) { q.Sort = model.SearchSortPriceAsc },
		"first":  func(q *model.SearchQuery) { q.First = 10 },
		"after":  func(q *model.SearchQuery) { q.After = "cursor" },
		"brand":  func(q *model.SearchQuery) { q.Filter.BrandIDs = []string{"b1"} },
		"rating": func(q *model.SearchQuery) { q.Filter.MinRating = &rating },
		"price":  func(q *model.SearchQuery) { q.Filter.Price = &model.PriceRange{Min: new(model.Cents(100))} },
	} {
		q := base
		change(&q)
		if cacheKey(q) == cacheKey(base) {
			t.Errorf("%s: cacheKey is the same as without the change", name)
		}
	}
}
