package elastic

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
)

// How the Elasticsearch engine reads the words of a query, mirroring the PostgreSQL engine
// (search/postgres, text.go) so that both find the same products:
//
//  1. The text is split into words: runs of letters and digits, lowercase, at most
//     search.MaxQueryWords distinct ones; PostgreSQL's English stop words are dropped. A text
//     without words browses; a text of stop words only finds nothing.
//  2. A word some document holds (after stemming, or through a synonym) is matched as it is.
//     An unknown word of three letters or more is matched with fuzziness AUTO: by the index
//     terms within one edit of it up to 5 letters, two from 6. Which words are known, and
//     the corrections of the others (term suggesters), are asked of the index in one small
//     request and remembered for search.WordsTTL.
//  3. A product matches when every word matches somewhere in its name, brand, category or
//     description (cross_fields); the known words go through the search analyzer together,
//     so that multi-word synonyms apply. User text is only ever the query of a
//     match or multi_match query: it never reaches a query-string parser.
//  4. Relevance is multi_match over name^3, brand^2, category and description, times
//     (1 + popularity, recency and margin boosts weighted by model.RelevanceWeights), times
//     the factor of every SearchBoost the product falls under: function_score, no scripts.

// textPlan is what a query's words become.
type textPlan struct {
	browse  bool       // no words: filters alone
	none    bool       // words, but only stop words: nothing matches
	exact   string     // the known words (and the unfuzzable ones), space-separated
	fuzzies [][]string // per unknown word, the index terms that correct it (none: no match)
}

// esFuzzable says whether an unknown word is matched with fuzziness: words of letters
// only (numbers and codes such as "3x5" never are) that fuzziness AUTO allows an edit in,
// three letters or more.
func esFuzzable(w string) bool {
	if utf8.RuneCountInString(w) < 3 {
		return false
	}
	for _, r := range w {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

// esDescending says whether sort orders its key from high to low (ties always by id asc).
func esDescending(sort model.SearchSort) bool { return sort != model.SearchSortPriceAsc }

var stopWordSet = func() map[string]bool {
	m := make(map[string]bool, len(englishStopWords))
	for _, w := range englishStopWords {
		m[w] = true
	}
	return m
}()

// planText reads text into a plan, asking the index which words it knows and how it
// would correct the others.
func (e *Engine) planText(ctx context.Context, text string) (textPlan, error) {
	words := search.QueryWords(text)
	if len(words) == 0 {
		return textPlan{browse: true}, nil
	}
	words = slices.DeleteFunc(words, func(w string) bool { return stopWordSet[w] })
	if len(words) == 0 {
		return textPlan{none: true}, nil
	}
	var fuzzable []string
	for _, w := range words {
		if esFuzzable(w) {
			fuzzable = append(fuzzable, w)
		}
	}
	info, err := e.words.Lookup(ctx, fuzzable, e.askWords)
	if err != nil {
		return textPlan{}, err
	}
	var plan textPlan
	var exact []string
	for _, w := range words {
		if got, ok := info[w]; ok && !got.known {
			plan.fuzzies = append(plan.fuzzies, got.fixes)
		} else {
			exact = append(exact, w)
		}
	}
	plan.exact = strings.Join(exact, " ")
	return plan, nil
}

// wordAnswer is what the index says of a query word.
type wordAnswer struct {
	known bool     // some document holds it (or a synonym of it)
	fixes []string // when unknown: the index terms within fuzziness AUTO of it
}

// suggestSize bounds the corrections of one word in one field, as max_expansions bounds a
// fuzzy query's terms.
const suggestSize = 50

// askWords asks the index, in one request, which words match some document (of any
// status, as PostgreSQL's vocabulary holds the words of every product), and for the
// corrections of each: a term suggester per text field lists the index terms within the
// edits fuzziness AUTO allows (1 up to 5 letters, 2 from 6; transpositions count one).
// Searches then match corrections as terms: a misspelled query costs what a spelled one
// does, once its corrections are remembered.
func (e *Engine) askWords(ctx context.Context, words []string) (map[string]wordAnswer, error) {
	filters := make(map[string]any, len(words))
	suggest := obj{}
	for i, w := range words {
		filters[strconv.Itoa(i)] = obj{"multi_match": obj{"query": w, "fields": matchFields}}
		edits := 1
		if utf8.RuneCountInString(w) >= 6 {
			edits = 2
		}
		for _, f := range matchFields {
			suggest[strconv.Itoa(i)+"_"+f] = obj{"text": w, "term": obj{"field": f, "suggest_mode": "always",
				"max_edits": edits, "prefix_length": 0, "min_word_length": 3, "size": suggestSize,
				"string_distance": "damerau_levenshtein"}}
		}
	}
	body := obj{"size": 0, "track_total_hits": false,
		"aggs": obj{"known": obj{"filters": obj{"filters": filters}}}, "suggest": suggest}
	var ans struct {
		Aggregations struct {
			Known struct {
				Buckets map[string]struct {
					DocCount int `json:"doc_count"`
				} `json:"buckets"`
			} `json:"known"`
		} `json:"aggregations"`
		Suggest map[string][]struct {
			Options []struct {
				Text string `json:"text"`
			} `json:"options"`
		} `json:"suggest"`
	}
	if err := e.Do(ctx, "POST", "/"+e.alias+"/_search", body, &ans); err != nil {
		return nil, fmt.Errorf("elasticsearch: look up query words: %w", err)
	}
	out := make(map[string]wordAnswer, len(words))
	for i, w := range words {
		a := wordAnswer{known: ans.Aggregations.Known.Buckets[strconv.Itoa(i)].DocCount > 0}
		for _, f := range matchFields {
			for _, tok := range ans.Suggest[strconv.Itoa(i)+"_"+f] {
				for _, o := range tok.Options {
					if !slices.Contains(a.fixes, o.Text) {
						a.fixes = append(a.fixes, o.Text)
					}
				}
			}
		}
		out[w] = a
	}
	return out, nil
}

// obj is a JSON object of the query DSL.
type obj = map[string]any

// textFields are the fields relevance is scored on, with their weights; matchFields the
// same without weights, where words are looked for.
var (
	textFields  = []string{"name^3", "brand^2", "category", "description"}
	matchFields = []string{"name", "brand", "category", "description"}
)

// matchClauses are the conditions the words put on a document: every word in some field.
// cross_fields with "and" reads the fields (one analyzer) as one: each term in any of them,
// as in the PostgreSQL engine's single tsvector; an unknown word is one of its
// corrections in any field. The same clauses score the relevance sort (with the fields'
// weights), so that the words are looked up once.
func (p textPlan) matchClauses(fields []string) []any {
	if p.none {
		return []any{obj{"match_none": obj{}}}
	}
	var out []any
	if p.exact != "" {
		out = append(out, obj{"multi_match": obj{"query": p.exact, "fields": fields, "type": "cross_fields", "operator": "and"}})
	}
	for _, fixes := range p.fuzzies {
		out = append(out, correctionsQuery(fixes, fields))
	}
	return out
}

// correctionsQuery matches any of the terms in any of the fields (which may carry a
// "^boost"). The terms are index terms, matched as they are: they are not analysed again.
func correctionsQuery(terms []string, fields []string) any {
	if len(terms) == 0 {
		return obj{"match_none": obj{}}
	}
	var should []any
	for _, f := range fields {
		name, boost, _ := strings.Cut(f, "^")
		b := 1.0
		if boost != "" {
			b, _ = strconv.ParseFloat(boost, 64)
		}
		for _, t := range terms {
			should = append(should, obj{"term": obj{name: obj{"value": t, "boost": b}}})
		}
	}
	return obj{"dis_max": obj{"queries": should, "tie_breaker": 0.3}}
}

// highlightQuery finds each word in fields on its own: what highlights mark.
func (p textPlan) highlightQuery(fields []string) any {
	var should []any
	if p.exact != "" {
		should = append(should, obj{"multi_match": obj{"query": p.exact, "fields": fields}})
	}
	for _, fixes := range p.fuzzies {
		should = append(should, correctionsQuery(fixes, fields))
	}
	return obj{"bool": obj{"should": should}}
}

// facetFilter is the condition of one selected facet filter.
type facetFilter struct {
	facet string // "category", "brand", "price", "rating" or "attr.<key>"
	query any
}

// facetFilters turns the selected filters into one condition per facet.
func facetFilters(f model.SearchFilter) []facetFilter {
	var out []facetFilter
	if len(f.CategoryIDs) > 0 {
		out = append(out, facetFilter{model.FacetCategory, obj{"terms": obj{"category_path": lowerAll(f.CategoryIDs)}}})
	}
	if len(f.BrandIDs) > 0 {
		out = append(out, facetFilter{model.FacetBrand, obj{"terms": obj{"brand_id": lowerAll(f.BrandIDs)}}})
	}
	if p := f.Price; p != nil && (p.Min != nil || p.Max != nil) {
		r := obj{}
		if p.Min != nil {
			r["gte"] = int64(*p.Min)
		}
		if p.Max != nil {
			r["lt"] = int64(*p.Max)
		}
		out = append(out, facetFilter{model.FacetPrice, obj{"range": obj{"price_cents": r}}})
	}
	if f.MinRating != nil {
		out = append(out, facetFilter{model.FacetRating, obj{"range": obj{"rating": obj{"gte": *f.MinRating}}}})
	}
	for _, a := range f.Attributes {
		out = append(out, facetFilter{model.AttributeFacetPrefix + a.Key, obj{"terms": obj{"attrs." + a.Key: a.Values}}})
	}
	return out
}

// allBut returns the conditions of every filter except facet's own ("" for none).
func allBut(filters []facetFilter, facet string) []any {
	var conds []any
	for _, f := range filters {
		if f.facet != facet {
			conds = append(conds, f.query)
		}
	}
	return conds
}

func lowerAll(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.ToLower(id)
	}
	return out
}

// searchBodies are the requests of a search, sent together in one _msearch: first the
// results (words, ACTIVE, exclusions and every selected filter, scored for relevance),
// with the facets that see the results, the sort with its search_after and highlights;
// then, for each facet with a selection, a count of its values under the other
// selections (disjunctive facets). Each request reads only the documents its filters
// let through, through the index: far cheaper than aggregating a post_filter's or a
// global aggregation's documents one by one.
func (e *Engine) searchBodies(q model.SearchQuery, plan textPlan, after *search.Cursor, now time.Time) []obj {
	filters := facetFilters(q.Filter)
	body := obj{
		"size":             q.First + 1, // one more tells whether there is a next page
		"track_total_hits": true,
		"_source":          false,
		"query":            e.mainQuery(q, plan, filters, now),
		"sort":             sortFor(q.Sort, plan),
		"aggs":             e.resultAggs(filters),
	}
	if after != nil {
		body["search_after"] = searchAfter(q.Sort, plan, *after)
	}
	if !plan.browse && !plan.none {
		body["highlight"] = obj{
			"pre_tags": []string{"<em>"}, "post_tags": []string{"</em>"}, "encoder": "html",
			"highlight_query": plan.highlightQuery([]string{"name", "description"}),
			"fields": obj{
				"name":        obj{"number_of_fragments": 0},
				"description": obj{"fragment_size": 150, "number_of_fragments": 2},
			},
		}
	}
	bodies := []obj{body}
	for _, f := range filters {
		bodies = append(bodies, obj{
			"size": 0, "track_total_hits": false,
			"query": obj{"bool": baseQuery(q, plan, allBut(filters, f.facet))},
			"aggs":  obj{e.facetAggName(f.facet): e.facetAgg(f.facet)},
		})
	}
	return bodies
}

// baseQuery is what every count of a search applies, scoring nothing: the active products
// the words match, less the excluded ones, under the given facet conditions.
func baseQuery(q model.SearchQuery, plan textPlan, conds []any) obj {
	filter := []any{obj{"term": obj{"status": "ACTIVE"}}}
	if !plan.browse {
		filter = append(filter, plan.matchClauses(matchFields)...)
	}
	b := obj{"filter": append(filter, conds...)}
	if len(q.ExcludeIDs) > 0 {
		b["must_not"] = []any{obj{"ids": obj{"values": lowerAll(q.ExcludeIDs)}}}
	}
	return b
}

// mainQuery selects the results: the base query under every filter; for the relevance
// sort of a text search the words are scored instead of filtered.
func (e *Engine) mainQuery(q model.SearchQuery, plan textPlan, filters []facetFilter, now time.Time) any {
	scored := !plan.browse && !plan.none && q.Sort == model.SearchSortRelevance
	if !scored {
		return obj{"bool": baseQuery(q, plan, allBut(filters, ""))}
	}
	b := baseQuery(q, textPlan{browse: true}, allBut(filters, ""))
	b["must"] = plan.matchClauses(textFields)
	return relevance(obj{"bool": b}, q, now)
}

// relevance multiplies the text score by 1 + the weighted boosts (the functions are
// summed: a weight alone is the 1) and then by the factor of each SearchBoost that
// matches; a document no boost matches keeps its score.
func relevance(query any, q model.SearchQuery, now time.Time) any {
	w := q.Weights
	fns := []any{obj{"weight": 1}}
	if w.Popularity > 0 {
		fns = append(fns, obj{"field_value_factor": obj{"field": "popularity", "modifier": "log1p", "missing": 0},
			"weight": w.Popularity})
	}
	if w.Recency > 0 {
		// Half of the boost is gone after 30 days, counted from the start of the day
		// (UTC), so that a score, and the cursors made of it, hold on every page.
		day := now.UTC().Truncate(24 * time.Hour)
		fns = append(fns, obj{"exp": obj{"created_us": obj{"origin": day.UnixMicro(),
			"scale": int64(30 * 24 * time.Hour / time.Microsecond), "decay": 0.5}}, "weight": w.Recency})
	}
	if w.Margin > 0 {
		fns = append(fns, obj{"field_value_factor": obj{"field": "margin", "missing": 0}, "weight": w.Margin})
	}
	scored := obj{"function_score": obj{"query": query, "functions": fns, "score_mode": "sum", "boost_mode": "multiply"}}
	if len(q.Boosts) == 0 {
		return scored
	}
	boosts := make([]any, 0, len(q.Boosts))
	for _, bo := range q.Boosts {
		cond := obj{"term": obj{"brand_id": strings.ToLower(bo.BrandID)}}
		if bo.CategoryID != "" {
			cond = obj{"term": obj{"category_path": strings.ToLower(bo.CategoryID)}}
		}
		boosts = append(boosts, obj{"filter": cond, "weight": bo.Factor})
	}
	return obj{"function_score": obj{"query": scored, "functions": boosts, "score_mode": "multiply", "boost_mode": "multiply"}}
}

// sortField is the field q's sort orders by; "" for the score.
func sortField(sort model.SearchSort, plan textPlan) string {
	switch sort {
	case model.SearchSortPriceAsc, model.SearchSortPriceDesc:
		return "price_cents"
	case model.SearchSortNewest:
		return "created_us"
	case model.SearchSortRelevance:
		if !plan.browse && !plan.none {
			return ""
		}
	}
	return "popularity"
}

// sortFor orders by the sort's key, then by id ascending.
func sortFor(sort model.SearchSort, plan textPlan) []any {
	order := "desc"
	if !esDescending(sort) {
		order = "asc"
	}
	key := obj{"_score": obj{"order": "desc"}}
	if f := sortField(sort, plan); f != "" {
		key = obj{f: obj{"order": order}}
	}
	return []any{key, obj{"product_id": obj{"order": "asc"}}}
}

// searchAfter is the cursor as sort values: the key (an integer for the integer fields)
// and the id.
func searchAfter(sort model.SearchSort, plan textPlan, c search.Cursor) []any {
	if sortField(sort, plan) == "" {
		return []any{c.Key, c.ID}
	}
	return []any{int64(c.Key), c.ID}
}

// The aggregations of the results (every filter applied): the price range, attribute
// coverage, and each facet without a selection.
const (
	aggPriceStats = "price_stats"
	aggAttrKeys   = "attr_keys"
)

func (e *Engine) resultAggs(filters []facetFilter) obj {
	keys := make([]string, len(e.cfg.AttributeKeys))
	for i, k := range e.cfg.AttributeKeys {
		keys[i] = k.Key
	}
	aggs := obj{
		aggPriceStats: obj{"stats": obj{"field": "price_cents"}},
		aggAttrKeys:   obj{"terms": obj{"field": "attr_keys", "include": keys, "size": max(1, len(keys))}},
	}
	for _, facet := range e.facetKeys() {
		if !slices.ContainsFunc(filters, func(f facetFilter) bool { return f.facet == facet }) {
			aggs[e.facetAggName(facet)] = e.facetAgg(facet)
		}
	}
	return aggs
}

// ratingBands splits ratings at the steps: [s1, ∞), [s2, s1), ... for the distinct steps
// from the highest down, so that "at least s" is the sum of the bands from s up.
func ratingBands(steps []float64) []any {
	sorted := slices.Clone(steps)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	out := make([]any, 0, len(sorted))
	for i, s := range sorted {
		band := obj{"from": s}
		if i+1 < len(sorted) {
			band["to"] = sorted[i+1]
		}
		out = append(out, band)
	}
	return out
}

// facetKeys lists every facet: category, brand, price, rating, then the attribute keys.
func (e *Engine) facetKeys() []string {
	out := []string{model.FacetCategory, model.FacetBrand, model.FacetPrice, model.FacetRating}
	for _, k := range e.cfg.AttributeKeys {
		out = append(out, model.AttributeFacetPrefix+k.Key)
	}
	return out
}

// facetAggName names a facet's aggregation: attribute keys become their position, since
// aggregation names may not hold every character a key may.
func (e *Engine) facetAggName(facet string) string {
	if key, ok := strings.CutPrefix(facet, model.AttributeFacetPrefix); ok {
		for i, k := range e.cfg.AttributeKeys {
			if k.Key == key {
				return "attr_" + strconv.Itoa(i)
			}
		}
	}
	return facet
}

// facetAgg counts one facet's values: terms by count then value (one shard: exact), price
// ranges in order, ratings in bands between the steps (added up into "at least" counts).
func (e *Engine) facetAgg(facet string) obj {
	terms := func(field string, size int) obj {
		return obj{"terms": obj{"field": field, "size": size,
			"order": []any{obj{"_count": "desc"}, obj{"_key": "asc"}}}}
	}
	switch facet {
	case model.FacetCategory:
		return terms("category_facet", e.cfg.FacetValues)
	case model.FacetBrand:
		return terms("brand_facet", e.cfg.FacetValues)
	case model.FacetPrice:
		ranges := []any{}
		for _, r := range e.cfg.PriceRanges() {
			rng := obj{}
			if r.Min != nil {
				rng["from"] = int64(*r.Min)
			}
			if r.Max != nil {
				rng["to"] = int64(*r.Max)
			}
			ranges = append(ranges, rng)
		}
		return obj{"range": obj{"field": "price_cents", "ranges": ranges}}
	case model.FacetRating:
		return obj{"range": obj{"field": "rating", "ranges": ratingBands(e.cfg.RatingSteps)}}
	}
	key := strings.TrimPrefix(facet, model.AttributeFacetPrefix)
	return terms("attrs."+key, e.cfg.FacetValues)
}

// ForgetWords drops what the engine remembers of which words the index holds, so that the
// next search asks again: after a change that may have made new words known.
func (e *Engine) ForgetWords() { e.words.Forget() }
