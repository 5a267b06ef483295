// Package searchtest holds what the tests of the search engines share: the conformance
// suite every search.Engine must pass, the seeded catalogs and the changes they search
// (written the way the store writes them: a new row version and an outbox event), the
// test search node, and the load helpers of the benchmarks.
package searchtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/relevance"
	"github.com/homegoods/storefront/seed"
)

// The conformance suite: every search.Engine runs the same cases over the same seeded catalog and
// is compared with answers computed here by brute force, in plain SQL over products,
// sharing no code with any engine.
//
// Beyond the package doc, the suite pins these semantics down:
//   - Category and brand facets are always present (their values may be empty); price and
//     rating list every configured range; attribute facets follow the category, brand,
//     price, rating facets.
//   - A price value is selected when the filter's range is exactly that range; a rating value
//     when the filter's minimum is exactly that step.
//   - Words: a product whose name contains a query word (as a word) is found; with several
//     words, a product whose name contains all of them is found. A word one edit away from a
//     catalog word (sofo, lanp, tabel) finds the products with the catalog word.
//   - Synonyms: EQUIVALENT terms find what each other finds; a ONE_WAY term also finds its
//     synonyms, not the reverse; multi-word terms match as phrases.
//   - Suggest: one suggestion per distinct name (its most popular product, ties by id), most
//     popular first, among active products with a word of the name starting with the prefix
//     (case-insensitive).
//   - Invalid input is a *model.Error with code BAD_USER_INPUT.

const (
	conformanceSeed     = 20261101 // the catalog
	conformanceCaseSeed = 7        // the generated cases
	conformanceProducts = 2000
)

// EngineFactory builds the engine under test over the catalog in pool (for Elasticsearch:
// a fresh index loaded from pool and refreshed). It is called once per suite run.
type EngineFactory func(t *testing.T, pool *pgxpool.Pool, cfg search.Config) search.Engine

// Hooks let an engine react to what the suite changes in pool.
type Hooks struct {
	// ControlsChanged runs after the suite changed the relevance controls (synonyms) in
	// pool and before it searches again; an engine that copies controls (Elasticsearch index
	// settings) applies them here. Nil when the engine reads them itself.
	ControlsChanged func(t *testing.T)
}

// RunConformance runs the suite against the engine newEngine builds.
func RunConformance(t *testing.T, newEngine EngineFactory, hooks ...Hooks) {
	var h Hooks
	if len(hooks) > 0 {
		h = hooks[0]
	}
	pool := dbtest.Open(t, dbtest.NewURL(t), nil)
	if _, err := seed.Catalog(context.Background(), pool, seed.Options{Products: conformanceProducts, Seed: conformanceSeed}); err != nil {
		t.Fatalf("seed catalog: %v", err)
	}
	t.Logf("catalog: %d products from seed %d; cases from seed %d", conformanceProducts, conformanceSeed, conformanceCaseSeed)
	cfg := search.DefaultConfig()
	cfg.FacetValues = 8     // small enough that brands and values get cut
	cfg.AttributeFacets = 4 // and attribute keys compete for places
	s := &confSuite{engine: newEngine(t, pool, cfg), oracle: &confOracle{pool: pool, cfg: cfg}, hooks: h}
	s.vocabulary = s.oracle.loadVocabulary(t)

	t.Run("filters", s.testFilters)
	t.Run("words", s.testWords)
	t.Run("words with filters", s.testWordsWithFilters)
	t.Run("typos", s.testTypos)
	t.Run("boosts", s.testBoosts)
	t.Run("suggest", s.testSuggest)
	t.Run("bad input", s.testBadInput)
	t.Run("synonyms", s.testSynonyms) // changes the controls: last
}

type confSuite struct {
	engine     search.Engine
	oracle     *confOracle
	hooks      Hooks
	vocabulary confVocabulary
}

// confVocabulary is what the generated cases draw from.
type confVocabulary struct {
	categories []string
	brands     []string
	values     map[string][]string // attribute key → values in the catalog
	popular    []string            // ids of active products, most popular first
	products   map[string]*confProduct
}

// confProduct is what filters can be drawn around.
type confProduct struct {
	path   []string // category ids from the root
	brand  string
	price  model.Cents
	rating float64
	attrs  map[string]string // facetable attributes as text
}

func (p *confProduct) priceOr(c model.Cents) model.Cents {
	if p == nil {
		return c
	}
	return p.price
}

// confCase is one generated search.
type confCase struct {
	name string
	q    model.SearchQuery
}

// testFilters compares browsing (no words) under random filter combinations and every sort
// with the brute-force answer.
func (s *confSuite) testFilters(t *testing.T) {
	r := rand.New(rand.NewPCG(conformanceCaseSeed, 1))
	sorts := allSearchSorts()
	ids := slices.Sorted(maps.Keys(s.vocabulary.products))
	for i := range 44 {
		var anchor *confProduct
		if i%5 != 4 {
			anchor = s.vocabulary.products[ids[r.IntN(len(ids))]]
		}
		q := model.SearchQuery{Filter: s.randomFilter(r, i, anchor), Sort: sorts[i%len(sorts)]}
		if i%7 == 3 {
			q.ExcludeIDs = s.vocabulary.popular[i : i+3]
		}
		c := confCase{name: fmt.Sprintf("case %d", i), q: q}
		t.Run(c.name, func(t *testing.T) { s.checkCase(t, c, nil) })
	}
}

// testWords checks that words find the products named with them, and that results,
// facets and cursors are consistent with the set the engine finds for the words alone.
func (s *confSuite) testWords(t *testing.T) {
	for _, text := range []string{"sofa", "lamp", "oak", "rug", "velvet", "brass", "wool", "table", "oak table", "velvet sofa", "Brass  FLOOR lamp!"} {
		t.Run(text, func(t *testing.T) {
			found := s.textSet(t, text)
			named := s.oracle.namedWithAll(t, queryWordsForTest(text))
			if missing := idsMinus(named, found); len(missing) > 0 {
				t.Errorf("%q: %d products named with the words are not found, e.g. %v", text, len(missing), s.oracle.names(t, missing[:min(3, len(missing))]))
			}
			if len(named) == 0 {
				t.Errorf("%q: no product is named with the words: the case tests nothing", text)
			}
			for _, sort := range allSearchSorts() {
				s.checkCase(t, confCase{name: string(sort), q: model.SearchQuery{Text: text, Sort: sort}}, found)
			}
		})
	}
}

// testWordsWithFilters runs random filters over word searches: the result and every
// facet must be what brute force computes over the set the words alone find, which checks
// that filters and disjunctive facets work the same with words as without.
func (s *confSuite) testWordsWithFilters(t *testing.T) {
	r := rand.New(rand.NewPCG(conformanceCaseSeed, 2))
	texts := []string{"sofa", "lamp", "oak", "rug", "table", "white", "linen", "oak table"}
	sorts := allSearchSorts()
	sets := map[string][]string{}
	for i := range 20 {
		text := texts[i%len(texts)]
		if sets[text] == nil {
			sets[text] = s.textSet(t, text)
		}
		var anchor *confProduct
		if i%5 != 4 && len(sets[text]) > 0 {
			anchor = s.vocabulary.products[sets[text][r.IntN(len(sets[text]))]]
		}
		q := model.SearchQuery{Text: text, Filter: s.randomFilter(r, i, anchor), Sort: sorts[(i/len(texts)+i)%len(sorts)]}
		if i%5 == 2 {
			q.ExcludeIDs = sets[text][:min(2, len(sets[text]))]
		}
		if i%4 == 1 {
			q.Weights = model.RelevanceWeights{Popularity: 1, Recency: 0.5, Margin: 2}
		}
		c := confCase{name: fmt.Sprintf("case %d %s", i, text), q: q}
		t.Run(c.name, func(t *testing.T) { s.checkCase(t, c, sets[text]) })
	}
}

// testTypos checks that a word one edit away from a catalog word finds the products named
// with the catalog word.
func (s *confSuite) testTypos(t *testing.T) {
	for _, c := range []struct{ typed, meant string }{
		{"sofo", "sofa"}, {"lanp", "lamp"}, {"tabel", "table"}, {"velvett", "velvet"}, {"mirorr", "mirror"},
		{"chandelir", "chandelier"}, {"Bras floor", "brass floor"},
	} {
		t.Run(c.typed, func(t *testing.T) {
			found := s.textSet(t, c.typed)
			named := s.oracle.namedWithAll(t, queryWordsForTest(c.meant))
			if len(named) == 0 {
				t.Fatalf("no product is named with %q: the case tests nothing", c.meant)
			}
			if missing := idsMinus(named, found); len(missing) > 0 {
				t.Errorf("%q finds %d products; %d named with %q are missing, e.g. %v",
					c.typed, len(found), len(missing), c.meant, s.oracle.names(t, missing[:min(3, len(missing))]))
			}
		})
	}
}

// testBoosts checks that a large boost brings the boosted brand or category first.
func (s *confSuite) testBoosts(t *testing.T) {
	ctx := context.Background()
	found := s.textSet(t, "table")
	brand, category := s.oracle.brandAndLeafOf(t, found[len(found)-1])
	for _, b := range []model.SearchBoost{{BrandID: brand, Factor: 100}, {CategoryID: category, Factor: 100}} {
		res, err := s.engine.Search(ctx, model.SearchQuery{Text: "table", Boosts: []model.SearchBoost{b}, First: 3})
		if err != nil {
			t.Fatalf("boost %+v: %v", b, err)
		}
		if len(res.Hits) == 0 {
			t.Fatalf("boost %+v: no hits", b)
		}
		gotBrand, gotCategory := s.oracle.brandAndLeafOf(t, res.Hits[0].ProductID)
		if (b.BrandID != "" && gotBrand != b.BrandID) || (b.CategoryID != "" && gotCategory != b.CategoryID) {
			t.Errorf("boost %+v ×100: first hit %s is of brand %s, category %s", b, res.Hits[0].ProductID, gotBrand, gotCategory)
		}
		if res.Total != len(found) {
			t.Errorf("boost %+v: total %d; want %d (a boost reorders, it does not filter)", b, res.Total, len(found))
		}
	}
}

// testSuggest compares suggestions with the brute-force list.
func (s *confSuite) testSuggest(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		prefix string
		limit  int
	}{{"sof", 5}, {"Lam", 8}, {"oa", 10}, {"wal", 3}, {"d", 10}, {"sectional", 20}, {"chandelier", 40}, {"QUINBY", 30},
		{"zzzq", 5}, {"  ", 5}} {
		got, err := s.engine.Suggest(ctx, c.prefix, c.limit)
		if err != nil {
			t.Errorf("Suggest(%q, %d): %v", c.prefix, c.limit, err)
			continue
		}
		want := s.oracle.suggest(t, c.prefix, c.limit)
		if !slices.Equal(got, want) {
			t.Errorf("Suggest(%q, %d):\n got %v\nwant %v", c.prefix, c.limit, got, want)
		}
		if strings.TrimSpace(c.prefix) != "" && c.prefix != "zzzq" && len(want) == 0 {
			t.Errorf("Suggest(%q): the brute force finds nothing: the case tests nothing", c.prefix)
		}
	}
}

// testBadInput checks that absurd and malformed input is a client error.
func (s *confSuite) testBadInput(t *testing.T) {
	ctx := context.Background()
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	manyValues := make([]string, 1000)
	for i := range manyValues {
		manyValues[i] = fmt.Sprintf("v%d", i)
	}
	neg, lo, hi := model.Cents(-100), model.Cents(5000), model.Cents(2500)
	badRating := 7.5
	res, err := s.engine.Search(ctx, model.SearchQuery{Text: "sofa", First: 2})
	if err != nil || res.PageInfo.EndCursor == nil {
		t.Fatalf("search for a cursor: %v", err)
	}
	cursor := *res.PageInfo.EndCursor
	for _, c := range []struct {
		name string
		q    model.SearchQuery
	}{
		{"10 kB of text", model.SearchQuery{Text: strings.Repeat("sofa ", 2048)}},
		{"invalid UTF-8", model.SearchQuery{Text: "sofa \xff\xfe"}},
		{"1000 categories", model.SearchQuery{Filter: model.SearchFilter{CategoryIDs: many}}},
		{"1000 brands", model.SearchQuery{Filter: model.SearchFilter{BrandIDs: many}}},
		{"1000 attribute values", model.SearchQuery{Filter: model.SearchFilter{Attributes: []model.AttributeFilter{{Key: "color", Values: manyValues}}}}},
		{"unknown attribute key", model.SearchQuery{Filter: model.SearchFilter{Attributes: []model.AttributeFilter{{Key: "weight_kg", Values: []string{"10"}}}}}},
		{"attribute without values", model.SearchQuery{Filter: model.SearchFilter{Attributes: []model.AttributeFilter{{Key: "color"}}}}},
		{"category that is not an id", model.SearchQuery{Filter: model.SearchFilter{CategoryIDs: []string{"sofas'; DROP TABLE products; --"}}}},
		{"negative price", model.SearchQuery{Filter: model.SearchFilter{Price: &model.PriceRange{Min: &neg}}}},
		{"min above max", model.SearchQuery{Filter: model.SearchFilter{Price: &model.PriceRange{Min: &lo, Max: &hi}}}},
		{"rating above 5", model.SearchQuery{Filter: model.SearchFilter{MinRating: &badRating}}},
		{"first 1000", model.SearchQuery{First: 1000}},
		{"negative first", model.SearchQuery{First: -1}},
		{"malformed cursor", model.SearchQuery{Text: "sofa", After: "not-a-cursor"}},
		{"cursor of garbage JSON", model.SearchQuery{Text: "sofa", After: search.Cursor{Sort: model.SearchSortRelevance, ID: "x"}.Encode()}},
		{"cursor of another sort", model.SearchQuery{Text: "sofa", Sort: model.SearchSortPriceAsc, After: cursor}},
		{"excluded id that is not an id", model.SearchQuery{ExcludeIDs: []string{"sofa"}}},
		{"negative weight", model.SearchQuery{Text: "sofa", Weights: model.RelevanceWeights{Popularity: -1}}},
		{"boost factor 0", model.SearchQuery{Text: "sofa", Boosts: []model.SearchBoost{{BrandID: many[0]}}}},
	} {
		_, err := s.engine.Search(ctx, c.q)
		checkBadInput(t, "Search: "+c.name, err)
	}
	_, err = s.engine.Suggest(ctx, strings.Repeat("s", search.MaxPrefixLength+1), 5)
	checkBadInput(t, "Suggest: long prefix", err)
	_, err = s.engine.Suggest(ctx, "sof", 0)
	checkBadInput(t, "Suggest: limit 0", err)
	_, err = s.engine.Suggest(ctx, "sof", search.MaxFirst+1)
	checkBadInput(t, "Suggest: limit above the maximum", err)

	// Query syntax is not syntax: these are words (or nothing), never an error.
	for _, text := range []string{`sofa & !lamp | (oak:*)`, `"velvet" -sofa`, `title:sofa OR 1=1`, `'; DROP TABLE products; --`, `\`} {
		if _, err := s.engine.Search(ctx, model.SearchQuery{Text: text}); err != nil {
			t.Errorf("Search(%q): %v; query syntax must be read as words", text, err)
		}
	}
}

func checkBadInput(t *testing.T, what string, err error) {
	t.Helper()
	var e *model.Error
	if !errors.As(err, &e) || e.Code != model.CodeBadUserInput {
		t.Errorf("%s: error %v; want a *model.Error with code BAD_USER_INPUT", what, err)
	}
}

// testSynonyms adds synonym rules and checks what they find.
func (s *confSuite) testSynonyms(t *testing.T) {
	ctx := context.Background()
	controls := relevance.NewControls(s.oracle.pool)
	sofas := s.textSet(t, "sofa")
	loveseats := s.textSet(t, "loveseat")
	put := func(rule model.SynonymRule) {
		t.Helper()
		if _, err := controls.PutSynonym(ctx, rule); err != nil {
			t.Fatalf("PutSynonym(%+v): %v", rule, err)
		}
	}
	put(model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{"couch", "sofa"}})
	put(model.SynonymRule{Kind: model.SynonymOneWay, Terms: []string{"loveseat"}, Synonyms: []string{"sofa"}})
	put(model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{"carpet", "area rug"}})
	if s.hooks.ControlsChanged != nil {
		s.hooks.ControlsChanged(t)
	}

	if got := s.textSet(t, "couch"); !sameIDs(got, sofas) {
		t.Errorf("couch (EQUIVALENT with sofa) finds %d products; want the %d that sofa found", len(got), len(sofas))
	}
	if got := s.textSet(t, "sofa"); !sameIDs(got, sofas) {
		t.Errorf("sofa finds %d products with the rules; want the same %d as before", len(got), len(sofas))
	}
	want := idsUnion(sofas, loveseats)
	if got := s.textSet(t, "loveseat"); !sameIDs(got, want) {
		t.Errorf("loveseat (ONE_WAY to sofa) finds %d products; want %d: the loveseats and the sofas", len(got), len(want))
	}
	areaRugs := s.oracle.namedWithPhrase(t, "area rug")
	if len(areaRugs) == 0 {
		t.Fatal("no product is named with \"area rug\": the case tests nothing")
	}
	if missing := idsMinus(areaRugs, s.textSet(t, "carpet")); len(missing) > 0 {
		t.Errorf("carpet (EQUIVALENT with \"area rug\") misses %d of the %d area rugs", len(missing), len(areaRugs))
	}
	// Synonyms and filters together: the facets follow the expanded set.
	c := confCase{name: "couch with filters", q: model.SearchQuery{Text: "couch", Sort: model.SearchSortPriceAsc,
		Filter: model.SearchFilter{Attributes: []model.AttributeFilter{{Key: "material", Values: []string{"velvet", "linen"}}}}}}
	s.checkCase(t, c, sofas)
}

// randomFilter draws a filter: categories, brands, a price range, a minimum rating and 1 to
// 3 attribute keys, each present or not. Most filters are drawn around an anchor product,
// which they all let through (so that results are seldom empty); without an anchor the
// values are drawn from the whole catalog.
func (s *confSuite) randomFilter(r *rand.Rand, i int, anchor *confProduct) model.SearchFilter {
	v := s.vocabulary
	var f model.SearchFilter
	if r.IntN(2) == 0 {
		f.CategoryIDs = confPick(r, v.categories, r.IntN(2))
		if anchor != nil {
			f.CategoryIDs = append(f.CategoryIDs, anchor.path[r.IntN(len(anchor.path))])
		}
	}
	if r.IntN(3) == 0 {
		f.BrandIDs = confPick(r, v.brands, r.IntN(3))
		if anchor != nil && anchor.brand != "" {
			f.BrandIDs = append(f.BrandIDs, anchor.brand)
		}
	}
	f.Price = s.randomPrice(r, anchor)
	if r.IntN(3) == 0 {
		rating := []float64{4, 3, 3.5, 4.5, 1}[r.IntN(5)]
		if anchor != nil {
			rating = min(rating, anchor.rating)
		}
		f.MinRating = &rating
	}
	if i%3 != 2 {
		keys := slices.Sorted(maps.Keys(v.values))
		if anchor != nil {
			keys = slices.Sorted(maps.Keys(anchor.attrs))
		}
		for _, k := range confPick(r, keys, r.IntN(4)) {
			values := confPick(r, v.values[k], r.IntN(3))
			if anchor != nil && !slices.Contains(values, anchor.attrs[k]) {
				values = append(values, anchor.attrs[k])
			}
			if r.IntN(8) == 0 || len(values) == 0 {
				values = append(values, "no-such-value")
			}
			f.Attributes = append(f.Attributes, model.AttributeFilter{Key: k, Values: values})
		}
	}
	return f
}

// randomPrice draws no range, a range of the price facet, or a range of whole dollars.
func (s *confSuite) randomPrice(r *rand.Rand, anchor *confProduct) *model.PriceRange {
	switch r.IntN(4) {
	case 0:
		ranges := s.oracle.cfg.PriceRanges()
		pr := ranges[r.IntN(len(ranges))]
		if anchor != nil {
			for _, x := range ranges {
				if *x.Min <= anchor.price && (x.Max == nil || anchor.price < *x.Max) {
					pr = x
				}
			}
		}
		return &pr
	case 1:
		lo := model.Cents(r.IntN(400)) * 100
		if anchor != nil {
			lo = min(lo, anchor.price)
		}
		hi := max(lo, anchor.priceOr(0)) + model.Cents(1+r.IntN(2000))*100
		pr := &model.PriceRange{Min: &lo, Max: &hi}
		if r.IntN(2) == 0 {
			pr.Min = nil
		}
		return pr
	}
	return nil
}

// checkCase walks every page of c and compares total, hits, facets and price range with
// the brute-force answer. within is the set the words of c find (nil: no words).
func (s *confSuite) checkCase(t *testing.T, c confCase, within []string) {
	t.Helper()
	want := s.oracle.expect(t, c.q, within)
	t.Logf("%s: %d products, %d facets", c.name, want.total, len(want.facets))
	first, ids, keys := s.walk(t, c.q, confPageSize(want.total))
	if first == nil {
		return
	}
	if first.Total != want.total {
		t.Errorf("%s: total %d; want %d", c.name, first.Total, want.total)
	}
	if !samePrice(first.PriceRange, want.priceRange) {
		t.Errorf("%s: price range %v; want %v", c.name, fmtPrice(first.PriceRange), fmtPrice(want.priceRange))
	}
	explicit := c.q.Text == "" || c.q.Sort != model.SearchSortRelevance
	switch {
	case explicit && !slices.Equal(ids, want.ids):
		t.Errorf("%s: hits differ from the brute force (%d vs %d) at %d", c.name, len(ids), len(want.ids), firstDiffAt(ids, want.ids))
	case !explicit && !sameIDs(ids, want.ids):
		t.Errorf("%s: %d hits; want the %d of the brute force (missing %d, extra %d)", c.name, len(ids), len(want.ids),
			len(idsMinus(want.ids, ids)), len(idsMinus(ids, want.ids)))
	case !explicit:
		checkScoreOrder(t, c.name, ids, keys)
	}
	compareFacets(t, c.name, first.Facets, want.facets)
}

// walk pages through q with pages of size, checking the cursors, and returns the first
// page, the ids in order and their sort keys.
func (s *confSuite) walk(t *testing.T, q model.SearchQuery, size int) (*model.SearchResult, []string, []float64) {
	t.Helper()
	ctx := context.Background()
	q.First = size
	var first *model.SearchResult
	ids := []string{} // never nil: a word search that finds nothing restricts to nothing
	var keys []float64
	seen := map[string]bool{}
	for page := 0; ; page++ {
		res, err := s.engine.Search(ctx, q)
		if err != nil {
			t.Fatalf("search %+v: %v", q, err)
		}
		if first == nil {
			first = res
		} else if res.Total != first.Total {
			t.Errorf("page %d: total %d; the first page said %d", page, res.Total, first.Total)
		}
		if len(res.Hits) > size || (res.PageInfo.HasNextPage && len(res.Hits) != size) {
			t.Fatalf("page %d: %d hits of %d asked, hasNextPage %v", page, len(res.Hits), size, res.PageInfo.HasNextPage)
		}
		if page > 0 && !res.PageInfo.HasPreviousPage {
			t.Errorf("page %d: hasPreviousPage false after a cursor", page)
		}
		for _, h := range res.Hits {
			if seen[h.ProductID] {
				t.Fatalf("page %d repeats product %s", page, h.ProductID)
			}
			seen[h.ProductID] = true
			c, ok, err := search.DecodeCursor(model.SearchQuery{After: h.Cursor, Sort: q.Sort})
			if err != nil || !ok || c.ID != h.ProductID {
				t.Fatalf("hit %s has cursor %q (%+v, %v)", h.ProductID, h.Cursor, c, err)
			}
			ids, keys = append(ids, h.ProductID), append(keys, c.Key)
		}
		if !res.PageInfo.HasNextPage {
			return first, ids, keys
		}
		if res.PageInfo.EndCursor == nil || *res.PageInfo.EndCursor != res.Hits[len(res.Hits)-1].Cursor {
			t.Fatalf("page %d: endCursor is not the cursor of the last hit", page)
		}
		if page > 200 {
			t.Fatalf("more than 200 pages of %d: the cursor does not advance", size)
		}
		q.After = *res.PageInfo.EndCursor
	}
}

// pageSize walks small results with small pages and large ones in about a dozen pages.
func confPageSize(total int) int {
	return min(search.MaxFirst, max(7, total/12+1))
}

// textSet returns every product the engine finds for text, by walking all its pages.
func (s *confSuite) textSet(t *testing.T, text string) []string {
	t.Helper()
	_, ids, _ := s.walk(t, model.SearchQuery{Text: text, Sort: model.SearchSortRelevance}, search.MaxFirst)
	return ids
}

// checkScoreOrder checks that relevance keys never rise and that ties go by id.
func checkScoreOrder(t *testing.T, name string, ids []string, keys []float64) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		if keys[i] > keys[i-1] || (keys[i] == keys[i-1] && ids[i] < ids[i-1]) {
			t.Errorf("%s: hit %d (%s, score %v) comes after %s (score %v)", name, i, ids[i], keys[i], ids[i-1], keys[i-1])
			return
		}
	}
}

func compareFacets(t *testing.T, name string, got, want []model.Facet) {
	t.Helper()
	if g, w := FacetKeys(got), FacetKeys(want); !slices.Equal(g, w) {
		t.Errorf("%s: facets %v; want %v", name, g, w)
		return
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Kind != w.Kind || g.Label != w.Label {
			t.Errorf("%s: facet %s is %s %q; want %s %q", name, w.Key, g.Kind, g.Label, w.Kind, w.Label)
		}
		labels := w.Key != model.FacetCategory && w.Key != model.FacetBrand
		if fmtValues(g.Values, labels) != fmtValues(w.Values, labels) {
			t.Errorf("%s: facet %s values\n got %s\nwant %s", name, w.Key, fmtValues(g.Values, labels), fmtValues(w.Values, labels))
		}
	}
}

// FacetKeys lists the facets of fs by key, in order.
func FacetKeys(fs []model.Facet) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Key
	}
	return out
}

// fmtValues prints values with what is compared: value, label (for ranges and attributes;
// category and brand labels are names that clients relabel), count, selected.
func fmtValues(vs []model.FacetValue, labels bool) string {
	var b strings.Builder
	for _, v := range vs {
		sel := ""
		if v.Selected {
			sel = "*"
		}
		label := ""
		if labels {
			label = fmt.Sprintf(" %q", v.Label)
		}
		fmt.Fprintf(&b, "[%s%s%s %d] ", sel, v.Value, label, v.Count)
	}
	return b.String()
}

func fmtPrice(p *model.PriceStats) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprintf("[%d, %d]", p.Min, p.Max)
}

func samePrice(a, b *model.PriceStats) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func allSearchSorts() []model.SearchSort {
	return []model.SearchSort{model.SearchSortRelevance, model.SearchSortPriceAsc, model.SearchSortPriceDesc,
		model.SearchSortNewest, model.SearchSortPopularity}
}

// queryWordsForTest splits text into lowercase words, as a shopper reads them.
func queryWordsForTest(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func confPick(r *rand.Rand, from []string, n int) []string {
	n = min(n, len(from))
	out := make([]string, 0, n)
	for _, i := range r.Perm(len(from))[:n] {
		out = append(out, from[i])
	}
	return out
}

func idsMinus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

func idsUnion(a, b []string) []string {
	return append(append([]string{}, a...), idsMinus(b, a)...)
}

func sameIDs(a, b []string) bool {
	return len(a) == len(b) && len(idsMinus(a, b)) == 0 && len(idsMinus(b, a)) == 0
}

func firstDiffAt(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// confOracle computes answers by brute force: a straightforward query per facet over products.
type confOracle struct {
	pool *pgxpool.Pool
	cfg  search.Config
}

// confExpected is the brute-force answer to a search.
type confExpected struct {
	total      int
	ids        []string
	priceRange *model.PriceStats
	facets     []model.Facet
}

func (o *confOracle) loadVocabulary(t *testing.T) confVocabulary {
	t.Helper()
	var v confVocabulary
	o.query(t, `SELECT id::text FROM categories ORDER BY slug`, nil, func(r pgx.Rows) { v.categories = append(v.categories, scanText(t, r)) })
	o.query(t, `SELECT DISTINCT brand_id::text FROM products WHERE brand_id IS NOT NULL ORDER BY 1`, nil,
		func(r pgx.Rows) { v.brands = append(v.brands, scanText(t, r)) })
	o.query(t, `SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY popularity DESC, id LIMIT 100`, nil,
		func(r pgx.Rows) { v.popular = append(v.popular, scanText(t, r)) })
	v.products = map[string]*confProduct{}
	o.query(t, `
		SELECT p.id::text, c.path::text[], coalesce(p.brand_id::text, ''), p.price_cents, p.rating::float8,
		       coalesce((SELECT jsonb_object_agg(a.key, a.value) FROM jsonb_each_text(p.attributes) a
		                  WHERE a.key = ANY($1)), '{}')
		  FROM products p JOIN categories c ON c.id = p.category_id WHERE p.status = 'ACTIVE'`,
		[]any{o.attributeKeys()}, func(r pgx.Rows) {
			var id string
			var p confProduct
			if err := r.Scan(&id, &p.path, &p.brand, &p.price, &p.rating, &p.attrs); err != nil {
				t.Fatal(err)
			}
			v.products[id] = &p
		})
	v.values = map[string][]string{}
	for _, k := range o.cfg.AttributeKeys {
		o.query(t, `SELECT DISTINCT attributes ->> $1 FROM products WHERE attributes ? $1 ORDER BY 1`, []any{k.Key},
			func(r pgx.Rows) { v.values[k.Key] = append(v.values[k.Key], scanText(t, r)) })
	}
	return v
}

func (o *confOracle) attributeKeys() []string {
	var keys []string
	for _, k := range o.cfg.AttributeKeys {
		keys = append(keys, k.Key)
	}
	return keys
}

// where is the SQL condition on products p of q's filter without the facet skip, within
// the ids the words found (nil: no words), without the excluded ids.
func (o *confOracle) where(q model.SearchQuery, skip string, within []string) (string, []any) {
	conds := []string{"p.status = 'ACTIVE'"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	f := q.Filter
	if within != nil {
		conds = append(conds, "p.id = ANY("+arg(within)+"::uuid[])")
	}
	if len(q.ExcludeIDs) > 0 {
		conds = append(conds, "NOT p.id = ANY("+arg(q.ExcludeIDs)+"::uuid[])")
	}
	if len(f.CategoryIDs) > 0 && skip != model.FacetCategory {
		conds = append(conds, "p.category_id IN (SELECT id FROM categories WHERE path && "+arg(f.CategoryIDs)+"::uuid[])")
	}
	if len(f.BrandIDs) > 0 && skip != model.FacetBrand {
		conds = append(conds, "p.brand_id = ANY("+arg(f.BrandIDs)+"::uuid[])")
	}
	if f.Price != nil && skip != model.FacetPrice {
		if f.Price.Min != nil {
			conds = append(conds, "p.price_cents >= "+arg(int64(*f.Price.Min)))
		}
		if f.Price.Max != nil {
			conds = append(conds, "p.price_cents < "+arg(int64(*f.Price.Max)))
		}
	}
	if f.MinRating != nil && skip != model.FacetRating {
		conds = append(conds, "p.rating >= "+arg(*f.MinRating)+"::numeric")
	}
	for _, a := range f.Attributes {
		if skip != model.AttributeFacetPrefix+a.Key {
			conds = append(conds, "p.attributes ->> "+arg(a.Key)+" = ANY("+arg(a.Values)+"::text[])")
		}
	}
	return strings.Join(conds, " AND "), args
}

var oracleOrder = map[model.SearchSort]string{
	model.SearchSortRelevance:  "p.popularity DESC, p.id", // browsing; words are compared as sets
	model.SearchSortPriceAsc:   "p.price_cents, p.id",
	model.SearchSortPriceDesc:  "p.price_cents DESC, p.id",
	model.SearchSortNewest:     "p.created_at DESC, p.id",
	model.SearchSortPopularity: "p.popularity DESC, p.id",
}

func (o *confOracle) expect(t *testing.T, q model.SearchQuery, within []string) confExpected {
	t.Helper()
	if q.Sort == "" {
		q.Sort = model.SearchSortRelevance
	}
	var e confExpected
	where, args := o.where(q, "", within)
	o.query(t, `SELECT p.id::text FROM products p WHERE `+where+` ORDER BY `+oracleOrder[q.Sort], args,
		func(r pgx.Rows) { e.ids = append(e.ids, scanText(t, r)) })
	e.total = len(e.ids)
	if e.total > 0 {
		var lo, hi int64
		o.queryRow(t, `SELECT min(p.price_cents), max(p.price_cents) FROM products p WHERE `+where, args, &lo, &hi)
		e.priceRange = &model.PriceStats{Min: model.Cents(lo), Max: model.Cents(hi)}
	}
	e.facets = []model.Facet{
		o.categoryFacet(t, q, within), o.brandFacet(t, q, within), o.priceFacet(t, q, within), o.ratingFacet(t, q, within),
	}
	e.facets = append(e.facets, o.attributeFacets(t, q, within)...)
	return e
}

func (o *confOracle) categoryFacet(t *testing.T, q model.SearchQuery, within []string) model.Facet {
	where, args := o.where(q, model.FacetCategory, within)
	values := o.termValues(t, `
		SELECT c.id::text, c.name, count(*) FROM products p
		  JOIN categories leaf ON leaf.id = p.category_id
		  JOIN categories c ON c.id = ANY (leaf.path)
		 WHERE `+where+` GROUP BY c.id, c.name`, args, q.Filter.CategoryIDs)
	return model.Facet{Key: model.FacetCategory, Label: "Category", Kind: model.FacetKindTerms, Values: values}
}

func (o *confOracle) brandFacet(t *testing.T, q model.SearchQuery, within []string) model.Facet {
	where, args := o.where(q, model.FacetBrand, within)
	values := o.termValues(t, `
		SELECT b.id::text, b.name, count(*) FROM products p JOIN brands b ON b.id = p.brand_id
		 WHERE `+where+` GROUP BY b.id, b.name`, args, q.Filter.BrandIDs)
	return model.Facet{Key: model.FacetBrand, Label: "Brand", Kind: model.FacetKindTerms, Values: values}
}

// termValues runs a (value, label, count) query and keeps the top values.
func (o *confOracle) termValues(t *testing.T, sql string, args []any, selected []string) []model.FacetValue {
	values := []model.FacetValue{}
	o.query(t, sql, args, func(r pgx.Rows) {
		var v model.FacetValue
		if err := r.Scan(&v.Value, &v.Label, &v.Count); err != nil {
			t.Fatal(err)
		}
		v.Selected = slices.Contains(selected, v.Value)
		values = append(values, v)
	})
	sort.Slice(values, func(i, j int) bool {
		if values[i].Count != values[j].Count {
			return values[i].Count > values[j].Count
		}
		return values[i].Value < values[j].Value
	})
	return values[:min(len(values), o.cfg.FacetValues)]
}

func (o *confOracle) priceFacet(t *testing.T, q model.SearchQuery, within []string) model.Facet {
	where, args := o.where(q, model.FacetPrice, within)
	f := model.Facet{Key: model.FacetPrice, Label: "Price", Kind: model.FacetKindRange}
	for _, r := range o.cfg.PriceRanges() {
		cond, a := where, append([]any{}, args...)
		a = append(a, int64(*r.Min))
		cond += fmt.Sprintf(" AND p.price_cents >= $%d", len(a))
		if r.Max != nil {
			a = append(a, int64(*r.Max))
			cond += fmt.Sprintf(" AND p.price_cents < $%d", len(a))
		}
		var n int
		o.queryRow(t, `SELECT count(*) FROM products p WHERE `+cond, a, &n)
		sel := q.Filter.Price != nil && sameCents(q.Filter.Price.Min, r.Min) && sameCents(q.Filter.Price.Max, r.Max)
		f.Values = append(f.Values, model.FacetValue{Value: search.PriceValue(r), Label: search.PriceLabel(r), Count: n, Selected: sel})
	}
	return f
}

func sameCents(a, b *model.Cents) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func (o *confOracle) ratingFacet(t *testing.T, q model.SearchQuery, within []string) model.Facet {
	where, args := o.where(q, model.FacetRating, within)
	f := model.Facet{Key: model.FacetRating, Label: "Rating", Kind: model.FacetKindRange}
	for _, step := range o.cfg.RatingSteps {
		var n int
		o.queryRow(t, fmt.Sprintf(`SELECT count(*) FROM products p WHERE %s AND p.rating >= $%d::numeric`, where, len(args)+1),
			append(append([]any{}, args...), step), &n)
		sel := q.Filter.MinRating != nil && *q.Filter.MinRating == step
		f.Values = append(f.Values, model.FacetValue{Value: search.RatingValue(step), Label: search.RatingLabel(step), Count: n, Selected: sel})
	}
	return f
}

// attributeFacets: coverage of every key over the result, the keys shown, and for each the
// values over the result without the key's own filter.
func (o *confOracle) attributeFacets(t *testing.T, q model.SearchQuery, within []string) []model.Facet {
	where, args := o.where(q, "", within)
	coverage := map[string]int{}
	for _, k := range o.cfg.AttributeKeys {
		var n int
		o.queryRow(t, fmt.Sprintf(`SELECT count(*) FROM products p WHERE %s AND p.attributes ? $%d`, where, len(args)+1),
			append(append([]any{}, args...), k.Key), &n)
		coverage[k.Key] = n
	}
	selected := map[string][]string{}
	for _, a := range q.Filter.Attributes {
		selected[a.Key] = a.Values
	}
	var candidates []string
	for _, k := range o.cfg.AttributeKeys {
		candidates = append(candidates, k.Key)
	}
	byCoverage := func(keys []string) {
		sort.SliceStable(keys, func(i, j int) bool {
			if coverage[keys[i]] != coverage[keys[j]] {
				return coverage[keys[i]] > coverage[keys[j]]
			}
			return keys[i] < keys[j]
		})
	}
	byCoverage(candidates)
	var shown []string
	for k := range selected {
		shown = append(shown, k)
	}
	for _, k := range candidates {
		if len(shown) >= o.cfg.AttributeFacets {
			break
		}
		if _, ok := selected[k]; !ok && coverage[k] > 0 {
			shown = append(shown, k)
		}
	}
	byCoverage(shown)
	var out []model.Facet
	for _, k := range shown {
		kw, kargs := o.where(q, model.AttributeFacetPrefix+k, within)
		n := len(kargs) + 1
		values := o.termValues(t, fmt.Sprintf(`
			SELECT p.attributes ->> $%d, p.attributes ->> $%d, count(*) FROM products p
			 WHERE %s AND p.attributes ? $%d GROUP BY 1`, n, n, kw, n), append(kargs, k), selected[k])
		label, _ := o.cfg.AttributeLabel(k)
		out = append(out, model.Facet{Key: model.AttributeFacetPrefix + k, Label: label, Kind: model.FacetKindTerms, Values: values})
	}
	return out
}

// namedWithAll returns the active products whose name has every word, as a word.
func (o *confOracle) namedWithAll(t *testing.T, words []string) []string {
	conds := []string{"status = 'ACTIVE'"}
	var args []any
	for _, w := range words {
		args = append(args, `\m`+regexp.QuoteMeta(w)+`\M`)
		conds = append(conds, fmt.Sprintf("name ~* $%d", len(args)))
	}
	var ids []string
	o.query(t, `SELECT id::text FROM products WHERE `+strings.Join(conds, " AND "), args,
		func(r pgx.Rows) { ids = append(ids, scanText(t, r)) })
	return ids
}

// namedWithPhrase returns the active products whose name has the words of phrase in a row.
func (o *confOracle) namedWithPhrase(t *testing.T, phrase string) []string {
	var ids []string
	o.query(t, `SELECT id::text FROM products WHERE status = 'ACTIVE' AND name ~* $1`,
		[]any{`\m` + strings.Join(strings.Fields(phrase), `\s+`) + `\M`}, func(r pgx.Rows) { ids = append(ids, scanText(t, r)) })
	return ids
}

func (o *confOracle) names(t *testing.T, ids []string) []string {
	var names []string
	o.query(t, `SELECT name FROM products WHERE id = ANY($1::uuid[]) ORDER BY name`, []any{ids},
		func(r pgx.Rows) { names = append(names, scanText(t, r)) })
	return names
}

func (o *confOracle) brandAndLeafOf(t *testing.T, id string) (brand, category string) {
	var b *string
	o.queryRow(t, `SELECT brand_id::text, category_id::text FROM products WHERE id = $1`, []any{id}, &b, &category)
	if b != nil {
		brand = *b
	}
	return brand, category
}

// suggest: distinct names of active products with a word starting with prefix, each with
// its most popular product (ties by id), most popular first.
func (o *confOracle) suggest(t *testing.T, prefix string, limit int) []model.Suggestion {
	prefix = strings.Join(strings.Fields(strings.ToLower(prefix)), " ")
	out := []model.Suggestion{}
	if prefix == "" {
		return out
	}
	o.query(t, `
		SELECT name, id::text FROM (
		    SELECT DISTINCT ON (name) name, id, popularity FROM products
		     WHERE status = 'ACTIVE' AND lower(name) ~ $1
		     ORDER BY name, popularity DESC, id) best
		 ORDER BY popularity DESC, id LIMIT $2`,
		[]any{`(^|[^[:alnum:]])` + regexp.QuoteMeta(prefix), limit}, func(r pgx.Rows) {
			var s model.Suggestion
			if err := r.Scan(&s.Text, &s.ProductID); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		})
	return out
}

func (o *confOracle) query(t *testing.T, sql string, args []any, row func(pgx.Rows)) {
	t.Helper()
	rows, err := o.pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	for rows.Next() {
		row(rows)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (o *confOracle) queryRow(t *testing.T, sql string, args []any, dst ...any) {
	t.Helper()
	if err := o.pool.QueryRow(context.Background(), sql, args...).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func scanText(t *testing.T, r pgx.Rows) string {
	var s string
	if err := r.Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
