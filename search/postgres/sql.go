package postgres

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
)

// The search statement. One statement answers a search. The CTE "r" holds the result: the
// products that match the words and every filter. The total, the price range, the page of
// hits and the counts of every facet not filtered on come from r. The counts of a facet
// that is filtered on come from a subquery of their own over the products that pass every
// filter but that facet's, which is what disjunctive facets are, grouped by the one column
// they count. Every filter but price and rating is a code in terms, so that without words
// the filters of a subquery are one scan of one GIN index (of search_facets); with words,
// the words find the products (in search_docs) and the filters are checked on them.
//
// What the statement needs once (the tsquery, the codes the filters select, the
// categories of boosts) is computed once in the CTE "f". Every statement is prepared with a
// generic plan (db.Open's default): its filters are codes and its text a tsquery, which
// the planner sees only at execution anyway, and planning it costs more than running it on
// a typical result.
//
// The statement is a UNION ALL of typed rows (pgRow), which Go sorts, trims and labels.

// The columns of every row of the statement, named by its first SELECT: the total, price
// range and price and rating buckets of the result. %s: the price bucket and the rating
// bucket of r's columns.
const statsSelect = `
SELECT 'stats' AS kind, NULL::text AS value, NULL::text AS label, NULL::text AS extra, count(*) AS n,
       %s AS a, %s AS b, min(price_cents) AS lo, max(price_cents) AS hi, NULL::float8 AS key
  FROM r GROUP BY 6, 7`

// The hits: the keyset page. %s: the page subquery.
const (
	hitsSelect = `
SELECT 'hit', h.id::text, NULL, NULL, 0, NULL, NULL, NULL, NULL, h.key FROM (%s) h`
	// Highlights only for the page (not the extra hit that tells whether there is a next
	// page), with sentinels instead of <em> so that the text around them can be HTML-escaped
	// (products are written by merchandisers, shown in browsers). %s: the page subquery,
	// its order, the page size.
	highlightedHitsSelect = `
SELECT 'hit', h.id::text,
       CASE WHEN h.i <= %[3]s THEN ts_headline('english', p.name, f.tsq,
                                   'HighlightAll=true, StartSel=' || chr(2) || ', StopSel=' || chr(3)) END,
       CASE WHEN h.i <= %[3]s THEN ts_headline('english', p.description, f.tsq,
                                   'MaxFragments=2, MaxWords=25, MinWords=8, StartSel=' || chr(2) || ', StopSel='
                                   || chr(3) || ', FragmentDelimiter=' || chr(4)) END,
       0, NULL, NULL, NULL, NULL, h.key
  FROM (SELECT page.*, row_number() OVER (ORDER BY key %[2]s, id) AS i FROM (%[1]s) page) h
  JOIN products p ON p.id = h.id CROSS JOIN f`
	pageSelect = `SELECT id, key FROM r WHERE true%s ORDER BY key %s, id LIMIT %s`
)

// Facet counts. %s: the subquery counting products by the facet's column (x.n).
const (
	// Under the product's category and each ancestor.
	categoryCounts = `
SELECT 'category', c.id::text, c.name, NULL, sum(x.n)::bigint, NULL, NULL, NULL, NULL, NULL
  FROM (%s) x
  JOIN categories leaf ON leaf.id = x.category_id
  JOIN categories c ON c.id = ANY (leaf.path)
 GROUP BY c.id, c.name`
	// Products without a brand are left out by the join.
	brandCounts = `
SELECT 'brand', b.id::text, b.name, NULL, x.n, NULL, NULL, NULL, NULL, NULL
  FROM (%s) x JOIN brands b ON b.id = x.brand_id`
	// Products by attribute set, which Go spreads over the set's values (see pgSets).
	resultAttributeCounts = `
SELECT 'attr', NULL, NULL, NULL, count(*), attr_set, NULL, NULL, NULL, NULL FROM r GROUP BY 6`
	// %s: the attribute key, the conditions.
	ownAttributeCounts = `
SELECT 'attr_own', NULL, NULL, %s, count(*), d.attr_set, NULL, NULL, NULL, NULL
  FROM %s d, f WHERE true%s GROUP BY 6`
	// By price range and rating step, the buckets of priceBucket and ratingBucket. %s: the
	// bucket, the table, the conditions.
	ownPriceCounts = `
SELECT 'price', NULL, NULL, NULL, count(*), %s, NULL, NULL, NULL, NULL
  FROM %s d, f WHERE true%s GROUP BY 6`
	ownRatingCounts = `
SELECT 'rating', NULL, NULL, NULL, count(*), NULL, %s, NULL, NULL, NULL
  FROM %s d, f WHERE true%s GROUP BY 7`
	// %s: the column, the table, the conditions.
	ownCounts = `SELECT d.%[1]s, count(*) AS n FROM %[2]s d, f WHERE true%[3]s GROUP BY 1`
	// %s: the column.
	resultCounts = `SELECT %[1]s, count(*) AS n FROM r GROUP BY 1`
)

// The result, from search_docs with words, search_facets without (active products only).
// %s: the f columns, the key, the table and the conditions.
const resultCTE = `
WITH f AS MATERIALIZED (SELECT %s),
r AS MATERIALIZED (
    SELECT d.product_id AS id, d.category_id, d.brand_id, d.price_cents, d.rating, d.attr_set, %s AS key
      FROM %s d, f
     WHERE true%s
)`

// The tsquery built from the units once; today anchors the recency decay to the day, so
// that scores, and with them cursors, do not drift between the pages of a search.
const (
	tsqueryColumn = `search_tsquery(%s::jsonb) AS tsq`
	todayColumn   = `date_part('epoch', date_trunc('day', now())) AS today`
)

// Sort keys, all float8. NEWEST is exact Unix microseconds (numeric, then float8: exact
// below 2^53).
const (
	popularityKey = `d.popularity::float8`
	priceKey      = `d.price_cents::float8`
	newestKey     = `(extract(epoch FROM d.created_at) * 1000000)::float8`
	// Text relevance: word frequency with the A/B/C weights of the vector (name, brand and
	// category, description), times 1 + the weighted boosts, times the query's boost factors.
	// ts_rank rather than ts_rank_cd: cover density (how close together the words are)
	// walks every position of the vector and made ranking a third of the cost of a search,
	// while the field weights, which decide the order of products, are the same in both.
	rankExpr       = `ts_rank('{0.1, 0.2, 0.4, 1.0}', d.search_vector, f.tsq)::float8`
	popularityTerm = ` + %s::float8 * log(1 + d.popularity::float8)`
	// Half of the recency boost is gone after 30 days.
	recencyTerm = ` + %s::float8 * power(0.5, greatest(0, f.today - date_part('epoch', d.created_at)) / 2592000)`
	marginTerm  = ` + %s::float8 * CASE WHEN d.price_cents > 0
                                      THEN greatest(0, d.price_cents - d.cost_cents)::float8 / d.price_cents
                                      ELSE 0 END`
	brandBoost    = ` * CASE WHEN d.brand_id = %s::uuid THEN %s::float8 ELSE 1 END`
	categoryBoost = ` * CASE WHEN d.category_id = ANY (f.%s) THEN %s::float8 ELSE 1 END`
	boostColumn   = `ARRAY(SELECT id FROM categories WHERE path @> ARRAY[%s::uuid]) AS %s`
)

// The codes selected by the values of a filter, as f columns. %s: the values, the name.
const (
	categoryCodes = `ARRAY(SELECT t.code FROM categories c
                            JOIN search_terms t ON t.facet = 'category' AND t.value = c.id::text
                           WHERE c.path && %s::uuid[]) AS %s`
	brandCodes = `ARRAY(SELECT t.code FROM search_terms t
                        WHERE t.facet = 'brand' AND t.value = ANY (%s::uuid[]::text[])) AS %s`
	// %s: the facet ("attr.<key>"), the values, the name.
	attributeCodes = `ARRAY(SELECT t.code FROM search_terms t WHERE t.facet = %s AND t.value = ANY (%s::text[])) AS %s`
)

// Conditions on d, a row of search_docs or search_facets.
const (
	termsCond     = `d.terms && f.%s`
	minPriceCond  = `d.price_cents >= %s::bigint`
	maxPriceCond  = `d.price_cents < %s::bigint`
	minRatingCond = `d.rating >= %s::numeric`
	textCond      = ` AND d.search_vector @@ f.tsq`
	excludeCond   = ` AND d.product_id <> ALL (%s::uuid[])`
)

// pgFilter is the condition of one selected facet filter.
type pgFilter struct {
	facet string // the facet key: "category", "brand", "price", "rating" or "attr.<key>"
	cond  string
}

// pgStatement assembles the search SQL and its arguments; every value is an argument.
type pgStatement struct {
	args    []any
	fcols   []string // the columns of the f CTE
	filters []pgFilter
	base    string // the text and exclusion conditions, which every part shares
	text    bool
	table   string // search_docs with words, search_facets without
	// The price bounds and rating steps (descending) as arguments, for the buckets.
	bounds, steps []string
}

func (s *pgStatement) arg(v any) string {
	s.args = append(s.args, v)
	return "$" + strconv.Itoa(len(s.args)-1) // args[0] is the query mode
}

// fcol adds a column to f, formatting it with its name last, and returns its name.
func (s *pgStatement) fcol(format string, a ...any) string {
	name := "v" + strconv.Itoa(len(s.fcols))
	s.fcols = append(s.fcols, fmt.Sprintf(format, append(a, name)...))
	return name
}

// searchSQL builds the statement for q with the text units (nil: browse) and the cursor.
func (e *Engine) searchSQL(q model.SearchQuery, units []tsUnit, after *search.Cursor) (string, []any) {
	text := units != nil
	s := &pgStatement{args: []any{pgQueryMode}, text: text, table: "search_facets"}
	if text {
		s.fcols = append(s.fcols, fmt.Sprintf(tsqueryColumn, s.arg(unitsJSON(units))), todayColumn)
		s.base, s.table = textCond, "search_docs"
	}
	if len(q.ExcludeIDs) > 0 {
		s.base += fmt.Sprintf(excludeCond, s.arg(db.UUIDs(q.ExcludeIDs)))
	}
	s.filters = s.conditions(q.Filter)
	s.bucketArgs(e.cfg)
	key := s.sortKey(q, text)
	if len(s.fcols) == 0 {
		s.fcols = append(s.fcols, "true AS none")
	}
	var b strings.Builder
	b.WriteString(fmt.Sprintf(resultCTE, strings.Join(s.fcols, ", "), key, s.table, s.where("")))
	b.WriteString(fmt.Sprintf(statsSelect, s.priceBucket("price_cents"), s.ratingBucket("rating")))
	for _, part := range s.parts(q, after) {
		b.WriteString("\nUNION ALL")
		b.WriteString(part)
	}
	return b.String(), s.args
}

// parts are the hits and the facet counts.
func (s *pgStatement) parts(q model.SearchQuery, after *search.Cursor) []string {
	page := fmt.Sprintf(pageSelect, s.keyset(q.Sort, after), direction(q.Sort), s.arg(q.First+1))
	hits := fmt.Sprintf(hitsSelect, page)
	if s.text {
		hits = fmt.Sprintf(highlightedHitsSelect, page, direction(q.Sort), s.arg(q.First))
	}
	parts := []string{
		hits,
		fmt.Sprintf(categoryCounts, s.counts(model.FacetCategory, "category_id")),
		fmt.Sprintf(brandCounts, s.counts(model.FacetBrand, "brand_id")),
		resultAttributeCounts,
	}
	for _, f := range s.filters {
		switch {
		case f.facet == model.FacetPrice:
			parts = append(parts, fmt.Sprintf(ownPriceCounts, s.priceBucket("d.price_cents"), s.table, s.where(f.facet)))
		case f.facet == model.FacetRating:
			parts = append(parts, fmt.Sprintf(ownRatingCounts, s.ratingBucket("d.rating"), s.table, s.where(f.facet)))
		case strings.HasPrefix(f.facet, model.AttributeFacetPrefix):
			key := strings.TrimPrefix(f.facet, model.AttributeFacetPrefix)
			parts = append(parts, fmt.Sprintf(ownAttributeCounts, s.arg(key)+"::text", s.table, s.where(f.facet)))
		}
	}
	return parts
}

// counts is the subquery counting the products of a facet by column: over the result
// when the facet is not filtered on, else over the products passing every other filter.
func (s *pgStatement) counts(facet, column string) string {
	if !s.filtered(facet) {
		return fmt.Sprintf(resultCounts, column)
	}
	return fmt.Sprintf(ownCounts, column, s.table, s.where(facet))
}

func (s *pgStatement) filtered(facet string) bool {
	return slices.ContainsFunc(s.filters, func(f pgFilter) bool { return f.facet == facet })
}

// where is the conditions of every filter but skip's ("": all of them), after the shared
// ones. With words, the filters are checked on the products the words find (search_docs
// has no index for them): the words find few products through their index, while a
// filter can select a large part of the catalog (a top category), whose bitmap would cost
// more to build than the products it rules out.
func (s *pgStatement) where(skip string) string {
	var b strings.Builder
	b.WriteString(s.base)
	for _, f := range s.filters {
		if f.facet != skip {
			b.WriteString("\n       AND ")
			b.WriteString(f.cond)
		}
	}
	return b.String()
}

// conditions turns the selected filters into one condition per facet.
func (s *pgStatement) conditions(f model.SearchFilter) []pgFilter {
	var out []pgFilter
	if len(f.CategoryIDs) > 0 {
		codes := s.fcol(categoryCodes, s.arg(db.UUIDs(f.CategoryIDs)))
		out = append(out, pgFilter{model.FacetCategory, fmt.Sprintf(termsCond, codes)})
	}
	if len(f.BrandIDs) > 0 {
		codes := s.fcol(brandCodes, s.arg(db.UUIDs(f.BrandIDs)))
		out = append(out, pgFilter{model.FacetBrand, fmt.Sprintf(termsCond, codes)})
	}
	if p := f.Price; p != nil && (p.Min != nil || p.Max != nil) {
		var parts []string
		if p.Min != nil {
			parts = append(parts, fmt.Sprintf(minPriceCond, s.arg(int64(*p.Min))))
		}
		if p.Max != nil {
			parts = append(parts, fmt.Sprintf(maxPriceCond, s.arg(int64(*p.Max))))
		}
		out = append(out, pgFilter{model.FacetPrice, strings.Join(parts, " AND ")})
	}
	if f.MinRating != nil {
		out = append(out, pgFilter{model.FacetRating, fmt.Sprintf(minRatingCond, s.arg(*f.MinRating))})
	}
	for _, a := range f.Attributes {
		facet := model.AttributeFacetPrefix + a.Key
		codes := s.fcol(attributeCodes, s.arg(facet), s.arg(a.Values))
		out = append(out, pgFilter{facet, fmt.Sprintf(termsCond, codes)})
	}
	return out
}

// bucketArgs adds the price bounds and the rating steps, descending, as arguments.
func (s *pgStatement) bucketArgs(cfg search.Config) {
	for _, b := range cfg.PriceBounds {
		s.bounds = append(s.bounds, s.arg(int64(b)))
	}
	for _, r := range ratingThresholds(cfg) {
		s.steps = append(s.steps, s.arg(r))
	}
}

// ratingThresholds are the distinct rating steps, descending: rating bucket i holds the
// ratings from step i up to (not including) step i-1.
func ratingThresholds(cfg search.Config) []float64 {
	steps := slices.Clone(cfg.RatingSteps)
	slices.Sort(steps)
	slices.Reverse(steps)
	return slices.Compact(steps)
}

// priceBucket is the index of the price range of column (-1 below the first).
func (s *pgStatement) priceBucket(column string) string {
	if len(s.bounds) == 0 {
		return "-1"
	}
	var b strings.Builder
	b.WriteString("CASE")
	for i, bound := range s.bounds {
		fmt.Fprintf(&b, " WHEN %s < %s::bigint THEN %d", column, bound, i-1)
	}
	fmt.Fprintf(&b, " ELSE %d END", len(s.bounds)-1)
	return b.String()
}

// ratingBucket is the index of the highest rating step column reaches (NULL: none).
func (s *pgStatement) ratingBucket(column string) string {
	if len(s.steps) == 0 {
		return "NULL::int"
	}
	var b strings.Builder
	b.WriteString("CASE")
	for i, step := range s.steps {
		fmt.Fprintf(&b, " WHEN %s >= %s::numeric THEN %d", column, step, i)
	}
	b.WriteString(" END")
	return b.String()
}

// sortKey is the float8 that q's sort orders by.
func (s *pgStatement) sortKey(q model.SearchQuery, text bool) string {
	switch q.Sort {
	case model.SearchSortPriceAsc, model.SearchSortPriceDesc:
		return priceKey
	case model.SearchSortNewest:
		return newestKey
	case model.SearchSortRelevance:
		if text {
			return s.score(q)
		}
	}
	return popularityKey
}

// score is the relevance of a text search; weights of 0 leave their term out.
func (s *pgStatement) score(q model.SearchQuery) string {
	var b strings.Builder
	b.WriteString(rankExpr + " * (1")
	w := q.Weights
	if w.Popularity > 0 {
		b.WriteString(fmt.Sprintf(popularityTerm, s.arg(w.Popularity)))
	}
	if w.Recency > 0 {
		b.WriteString(fmt.Sprintf(recencyTerm, s.arg(w.Recency)))
	}
	if w.Margin > 0 {
		b.WriteString(fmt.Sprintf(marginTerm, s.arg(w.Margin)))
	}
	b.WriteString(")")
	for _, boost := range q.Boosts {
		if boost.BrandID != "" {
			b.WriteString(fmt.Sprintf(brandBoost, s.arg(db.UUID(boost.BrandID)), s.arg(boost.Factor)))
		} else {
			ids := s.fcol(boostColumn, s.arg(db.UUID(boost.CategoryID)))
			b.WriteString(fmt.Sprintf(categoryBoost, ids, s.arg(boost.Factor)))
		}
	}
	return b.String()
}

// descending says whether sort orders its key from high to low (ties always by id asc).
func descending(sort model.SearchSort) bool { return sort != model.SearchSortPriceAsc }

func direction(sort model.SearchSort) string {
	if descending(sort) {
		return "DESC"
	}
	return "ASC"
}

// keyset is the condition of the rows after the cursor: past its key in the sort's
// direction, or on its key with a greater id.
func (s *pgStatement) keyset(sort model.SearchSort, after *search.Cursor) string {
	if after == nil {
		return ""
	}
	op := ">"
	if descending(sort) {
		op = "<"
	}
	k, id := s.arg(after.Key), s.arg(db.UUID(after.ID))
	return fmt.Sprintf(" AND (key %s %s::float8 OR (key = %s::float8 AND id > %s::uuid))", op, k, k, id)
}
