// Package postgres is the PostgreSQL full-text engine: searches and suggestions from
// search_docs and search_facets in one statement each. It needs no other service, and is
// the fallback while Elasticsearch is unreachable.
package postgres

import (
	"context"
	"fmt"
	"html"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/relevance"
)

// Engine answers searches with PostgreSQL full-text search over search_docs (0005): one
// narrow row per active product with the stemmed English tsvector of 0001 (name A, brand
// and category B, description C) on a GIN index and the facet values as integer codes;
// browsing reads search_facets, the same rows without the tsvector, with the codes on a GIN
// index. Triggers keep both in step with products in the writing transaction. pg_trgm
// serves typo tolerance and suggestions; synonyms are expanded by the engine from the
// controls (see text.go). Filters, the disjunctive facets, the total, the price
// range and a keyset page of hits are one SQL statement (see sql.go). It is the
// engine without Elasticsearch, and the fallback while Elasticsearch is unreachable.
//
// Relevance (the RELEVANCE sort of a text search) is
//
//	ts_rank({0.1, 0.2, 0.4, 1.0}, vector, query)
//	  × (1 + Popularity·log10(1 + popularity) + Recency·0.5^(age in days / 30) + Margin·(price − cost)/price)
//	  × the factor of every boost the product falls under,
//
// with age counted from the start of the current day (UTC), so that a score is the same
// on every page of a search.
type Engine struct {
	pool     *pgxpool.Pool
	reads    *db.Reads // nil: searches run on pool
	cfg      search.Config
	controls *relevance.Controls // nil: no synonyms
	words    search.WordCache[wordInfo]
	sets     pgSets
	// keysReady is set once search_facet_keys holds every attribute key of cfg.
	keysReady atomic.Bool
	keysMu    sync.Mutex
}

// pgQueryMode runs every search statement prepared, with the generic plan db.Open asks for
// (see sql.go), and reads results in binary: sort keys come back as exact floats.
const pgQueryMode = pgx.QueryExecModeCacheStatement

// New returns the engine on pool; controls (which may be nil) supply synonyms.
func New(pool *pgxpool.Pool, cfg search.Config, controls *relevance.Controls) *Engine {
	return &Engine{pool: pool, cfg: cfg, controls: controls}
}

// ReadFrom sends the searches and suggestions to the read replicas of reads.
func (e *Engine) ReadFrom(reads *db.Reads) { e.reads = reads }

// read returns where a search runs.
func (e *Engine) read(ctx context.Context) db.Querier {
	if e.reads == nil {
		return e.pool
	}
	return e.reads.For(ctx)
}

// Name implements search.Engine.
func (e *Engine) Name() string { return "postgres" }

// Search implements search.Engine.
func (e *Engine) Search(ctx context.Context, q model.SearchQuery) (*model.SearchResult, error) {
	after, err := e.cfg.Prepare(&q)
	if err != nil {
		return nil, err
	}
	if err := e.ensureFacetKeys(ctx); err != nil {
		return nil, err
	}
	units, err := e.textUnits(ctx, q.Text)
	if err != nil {
		return nil, err
	}
	sql, args := e.searchSQL(q, units, after)
	rows, err := e.read(ctx).Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres search: %w", err)
	}
	res, err := e.result(ctx, q, after != nil, rows)
	if err != nil {
		return nil, fmt.Errorf("postgres search: %w", err)
	}
	return res, nil
}

// ensureFacetKeys makes sure that search_facet_keys has the attribute keys of the
// configuration: only those keys' values have codes (0005). The migration lists
// the default keys, so this only ever writes after a key is added to the configuration,
// once; the insert then rebuilds the codes of every product (seconds for 100k products),
// which is not left half done when the search that started it gives up. Searches that
// come meanwhile do not wait for it: until it commits they count the keys that have codes.
func (e *Engine) ensureFacetKeys(ctx context.Context) error {
	if e.keysReady.Load() || !e.keysMu.TryLock() {
		return nil
	}
	defer e.keysMu.Unlock()
	if e.keysReady.Load() {
		return nil
	}
	keys := make([]string, len(e.cfg.AttributeKeys))
	for i, k := range e.cfg.AttributeKeys {
		keys[i] = k.Key
	}
	var missing []string
	err := e.pool.QueryRow(ctx, `SELECT ARRAY(SELECT unnest($1::text[]) EXCEPT SELECT key FROM search_facet_keys)`,
		keys).Scan(&missing)
	if err == nil && len(missing) > 0 {
		_, err = e.pool.Exec(context.WithoutCancel(ctx),
			`INSERT INTO search_facet_keys (key) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, missing)
	}
	if err != nil {
		return fmt.Errorf("postgres search: facet keys: %w", err)
	}
	e.keysReady.Store(true)
	return nil
}

// pgRow is one row of the search statement (see sql.go for what each kind holds).
type pgRow struct {
	kind                string
	value, label, extra pgtype.Text
	n                   int64
	a                   pgtype.Int4 // a price bucket, or an attribute set
	b                   pgtype.Int4 // a rating bucket
	lo, hi              pgtype.Int8
	key                 pgtype.Float8
}

// result reads the rows of the search statement into a result.
func (e *Engine) result(ctx context.Context, q model.SearchQuery, paged bool, rows pgx.Rows) (*model.SearchResult, error) {
	res := &model.SearchResult{Backend: e.Name(), Hits: []model.SearchHit{}}
	a := pgAssembly{filter: q.Filter, counts: search.NewFacetCounts(), steps: ratingThresholds(e.cfg)}
	if err := a.read(res, rows); err != nil {
		return nil, err
	}
	sets, err := e.sets.attributes(ctx, e.pool, a.sets)
	if err != nil {
		return nil, err
	}
	a.addAttributes(sets)
	res.Hits, res.PageInfo = pgHitsPage(q, paged, a.hits)
	res.Facets = a.counts.Facets(e.cfg, q.Filter)
	return res, nil
}

// pgAssembly gathers the rows of a search statement.
type pgAssembly struct {
	filter model.SearchFilter
	counts *search.FacetCounts
	steps  []float64 // ratingThresholds: the step of each rating bucket
	hits   []pgHit
	sets   []pgSetCount
}

func (a *pgAssembly) read(res *model.SearchResult, rows pgx.Rows) error {
	defer rows.Close()
	var r pgRow
	for rows.Next() {
		if err := rows.Scan(&r.kind, &r.value, &r.label, &r.extra, &r.n, &r.a, &r.b, &r.lo, &r.hi, &r.key); err != nil {
			return err
		}
		if err := a.add(res, &r); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (a *pgAssembly) add(res *model.SearchResult, r *pgRow) error {
	switch r.kind {
	case "stats":
		a.addStats(res, r)
	case "hit":
		if !r.value.Valid || !r.key.Valid {
			return fmt.Errorf("malformed hit row")
		}
		a.hits = append(a.hits, pgHit{id: r.value.String, key: r.key.Float64, name: r.label, describes: r.extra})
	case model.FacetCategory, model.FacetBrand:
		a.counts.AddTerm(r.kind, r.value.String, r.label.String, int(r.n))
	case model.FacetPrice:
		a.counts.AddPrice(int(r.a.Int32), int(r.n))
	case model.FacetRating:
		a.addRating(r.b, r.n)
	case "attr", "attr_own":
		a.sets = append(a.sets, pgSetCount{set: r.a.Int32, n: int(r.n), own: r.extra.String})
	default:
		return fmt.Errorf("unknown row kind %q", r.kind)
	}
	return nil
}

// addStats adds a bucket of the result: to the total and price range, and to the price and
// rating counts unless those are filtered (their counts then come from rows of their own).
func (a *pgAssembly) addStats(res *model.SearchResult, r *pgRow) {
	res.Total += int(r.n)
	if r.lo.Valid && r.hi.Valid {
		if res.PriceRange == nil {
			res.PriceRange = &model.PriceStats{Min: model.Cents(r.lo.Int64), Max: model.Cents(r.hi.Int64)}
		}
		res.PriceRange.Min = min(res.PriceRange.Min, model.Cents(r.lo.Int64))
		res.PriceRange.Max = max(res.PriceRange.Max, model.Cents(r.hi.Int64))
	}
	if f := a.filter.Price; f == nil || (f.Min == nil && f.Max == nil) {
		a.counts.AddPrice(int(r.a.Int32), int(r.n))
	}
	if a.filter.MinRating == nil {
		a.addRating(r.b, r.n)
	}
}

// addRating counts a rating bucket as products rated its step: the facet adds steps up.
func (a *pgAssembly) addRating(bucket pgtype.Int4, n int64) {
	if bucket.Valid && int(bucket.Int32) < len(a.steps) {
		a.counts.AddRating(a.steps[bucket.Int32], int(n))
	}
}

// addAttributes spreads the counts of attribute sets over their values. A count of the
// result makes the coverage of each key, and the counts of the values of keys not filtered;
// the values of a filtered key come from the counts of its own (every filter but its own).
func (a *pgAssembly) addAttributes(sets map[int32][]pgAttr) {
	filtered := map[string]bool{}
	for _, f := range a.filter.Attributes {
		filtered[f.Key] = true
	}
	for _, c := range a.sets {
		for _, attr := range sets[c.set] {
			switch {
			case c.own != "":
				if attr.key == c.own {
					a.counts.AddAttribute(attr.key, attr.value, c.n, false)
				}
			case filtered[attr.key]:
				a.counts.AddCoverage(attr.key, c.n)
			default:
				a.counts.AddAttribute(attr.key, attr.value, c.n, true)
			}
		}
	}
}

// pgHit is a hit as the statement returns it.
type pgHit struct {
	id              string
	key             float64
	name, describes pgtype.Text // ts_headline output, with sentinel markers
}

// pgHitsPage orders the hits as the sort does (the UNION ALL does not keep the page's order),
// keeps First of them and makes their cursors.
func pgHitsPage(q model.SearchQuery, paged bool, hits []pgHit) ([]model.SearchHit, model.PageInfo) {
	desc := descending(q.Sort)
	sort.Slice(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if a.key != b.key {
			return (a.key > b.key) == desc
		}
		return a.id < b.id
	})
	info := model.PageInfo{HasPreviousPage: paged, HasNextPage: len(hits) > q.First}
	if info.HasNextPage {
		hits = hits[:q.First]
	}
	out := make([]model.SearchHit, len(hits))
	for i, h := range hits {
		out[i] = model.SearchHit{
			ProductID:  h.id,
			Cursor:     search.Cursor{Sort: q.Sort, Key: h.key, ID: h.id}.Encode(),
			Highlights: pgHighlights(h),
		}
	}
	if len(out) > 0 {
		info.StartCursor, info.EndCursor = &out[0].Cursor, &out[len(out)-1].Cursor
	}
	return out, info
}

// The markers ts_headline puts around matched words, and between description fragments.
const (
	markStart = "\x02"
	markStop  = "\x03"
	markSplit = "\x04"
)

// pgHighlights keeps the fragments in which a word matched, HTML-escaped with the matches in
// <em></em>.
func pgHighlights(h pgHit) []model.Highlight {
	var out []model.Highlight
	if h.name.Valid && strings.Contains(h.name.String, markStart) {
		out = append(out, model.Highlight{Field: "name", Fragments: []string{pgEmphasize(h.name.String)}})
	}
	if h.describes.Valid {
		var frags []string
		for _, f := range strings.Split(h.describes.String, markSplit) {
			if strings.Contains(f, markStart) {
				frags = append(frags, pgEmphasize(strings.TrimSpace(f)))
			}
		}
		if len(frags) > 0 {
			out = append(out, model.Highlight{Field: "description", Fragments: frags})
		}
	}
	return out
}

// pgMarks turns the markers into tags; a Replacer is built once, not per fragment.
var pgMarks = strings.NewReplacer(markStart, "<em>", markStop, "</em>")

func pgEmphasize(s string) string {
	return pgMarks.Replace(html.EscapeString(s))
}

// pgLikeEscapes makes a text match itself in a LIKE pattern.
var pgLikeEscapes = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

func pgEscapeLike(s string) string { return pgLikeEscapes.Replace(s) }
