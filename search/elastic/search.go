package elastic

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
)

// Search implements search.Engine.
func (e *Engine) Search(ctx context.Context, q model.SearchQuery) (*model.SearchResult, error) {
	after, err := e.cfg.Prepare(&q)
	if err != nil {
		return nil, err
	}
	plan, err := e.planText(ctx, q.Text)
	if err != nil {
		return nil, err
	}
	answers, err := e.msearch(ctx, e.searchBodies(q, plan, after, time.Now()))
	if err != nil {
		return nil, fmt.Errorf("elasticsearch search: %w", err)
	}
	return e.result(q, after != nil, answers)
}

// msearch sends searches of the alias in one _msearch request; one that fails fails all.
func (e *Engine) msearch(ctx context.Context, bodies []obj) ([]esSearchAnswer, error) {
	if len(bodies) == 1 {
		var ans esSearchAnswer
		err := e.Do(ctx, "POST", "/"+e.alias+"/_search", bodies[0], &ans)
		return []esSearchAnswer{ans}, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, b := range bodies {
		if err := enc.Encode(obj{}); err != nil {
			return nil, err
		}
		if err := enc.Encode(b); err != nil {
			return nil, err
		}
	}
	var ans struct {
		Responses []struct {
			esSearchAnswer
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"responses"`
	}
	if err := e.Do(ctx, "POST", "/"+e.alias+"/_msearch", buf.Bytes(), &ans); err != nil {
		return nil, err
	}
	if len(ans.Responses) != len(bodies) {
		return nil, fmt.Errorf("_msearch answered %d of %d searches", len(ans.Responses), len(bodies))
	}
	out := make([]esSearchAnswer, len(bodies))
	for i, r := range ans.Responses {
		if len(r.Error) > 0 {
			return nil, &esError{Status: r.Status, Reason: string(r.Error)}
		}
		out[i] = r.esSearchAnswer
	}
	return out, nil
}

// esSearchAnswer is the part of a search answer the engine reads.
type esSearchAnswer struct {
	Hits struct {
		Total struct {
			Value int `json:"value"`
		} `json:"total"`
		Hits []esHit `json:"hits"`
	} `json:"hits"`
	Aggregations map[string]json.RawMessage `json:"aggregations"`
}

type esHit struct {
	ID        string              `json:"_id"`
	Sort      []json.RawMessage   `json:"sort"`
	Highlight map[string][]string `json:"highlight"`
	Fields    map[string][]string `json:"fields"`
}

// result turns the answers into the page, its cursors and the facets.
func (e *Engine) result(q model.SearchQuery, paged bool, answers []esSearchAnswer) (*model.SearchResult, error) {
	ans := answers[0]
	res := &model.SearchResult{Backend: e.Name(), Total: ans.Hits.Total.Value}
	hits, info, err := pageOf(q, ans.Hits.Hits, paged)
	if err != nil {
		return nil, err
	}
	res.Hits, res.PageInfo = hits, info
	aggs := maps.Clone(ans.Aggregations)
	for _, a := range answers[1:] { // each holds one selected facet's counts
		maps.Copy(aggs, a.Aggregations)
	}
	counts, stats, err := e.facetCounts(aggs)
	if err != nil {
		return nil, err
	}
	res.Facets = counts.Facets(e.cfg, q.Filter)
	if stats.Count > 0 && stats.Min != nil && stats.Max != nil {
		res.PriceRange = &model.PriceStats{Min: model.Cents(*stats.Min), Max: model.Cents(*stats.Max)}
	}
	return res, nil
}

// pageOf keeps First hits, with their cursors and highlights.
func pageOf(q model.SearchQuery, hits []esHit, paged bool) ([]model.SearchHit, model.PageInfo, error) {
	info := model.PageInfo{HasPreviousPage: paged, HasNextPage: len(hits) > q.First}
	if info.HasNextPage {
		hits = hits[:q.First]
	}
	out := make([]model.SearchHit, len(hits))
	for i, h := range hits {
		if len(h.Sort) != 2 {
			return nil, info, fmt.Errorf("elasticsearch search: hit %s has %d sort values", h.ID, len(h.Sort))
		}
		key, err := strconv.ParseFloat(string(h.Sort[0]), 64)
		if err != nil {
			return nil, info, fmt.Errorf("elasticsearch search: sort value of %s: %w", h.ID, err)
		}
		out[i] = model.SearchHit{
			ProductID:  h.ID,
			Cursor:     search.Cursor{Sort: q.Sort, Key: key, ID: h.ID}.Encode(),
			Highlights: highlightsOf(h.Highlight),
		}
	}
	if len(out) > 0 {
		info.StartCursor, info.EndCursor = &out[0].Cursor, &out[len(out)-1].Cursor
	}
	return out, info, nil
}

// highlightsOf lists the name's highlight, then the description's.
func highlightsOf(h map[string][]string) []model.Highlight {
	var out []model.Highlight
	for _, field := range []string{"name", "description"} {
		if frags := h[field]; len(frags) > 0 {
			out = append(out, model.Highlight{Field: field, Fragments: frags})
		}
	}
	return out
}

// The aggregation answers the engine reads.
type (
	esBuckets struct {
		Buckets []struct {
			Key      json.RawMessage `json:"key"`
			From     *float64        `json:"from"` // of a range bucket
			DocCount int             `json:"doc_count"`
		} `json:"buckets"`
	}
	esStats struct {
		Count int      `json:"count"`
		Min   *float64 `json:"min"`
		Max   *float64 `json:"max"`
	}
)

// facetCounts reads the facet aggregations into the counts the PostgreSQL engine fills too,
// so both present facets the same way (see search.FacetCounts).
func (e *Engine) facetCounts(aggs map[string]json.RawMessage) (*search.FacetCounts, esStats, error) {
	var stats esStats
	counts := search.NewFacetCounts()
	if err := json.Unmarshal(aggs[aggPriceStats], &stats); err != nil {
		return nil, stats, fmt.Errorf("elasticsearch search: price stats: %w", err)
	}
	var keys esBuckets
	if err := json.Unmarshal(aggs[aggAttrKeys], &keys); err != nil {
		return nil, stats, fmt.Errorf("elasticsearch search: attribute keys: %w", err)
	}
	for _, b := range keys.Buckets {
		counts.AddCoverage(keyString(b.Key), b.DocCount)
	}
	for _, facet := range e.facetKeys() {
		if err := e.addFacet(counts, facet, aggs[e.facetAggName(facet)]); err != nil {
			return nil, stats, err
		}
	}
	return counts, stats, nil
}

// addFacet adds the buckets of one facet's aggregation to the counts.
func (e *Engine) addFacet(c *search.FacetCounts, facet string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return fmt.Errorf("elasticsearch search: no counts for facet %s", facet)
	}
	var b esBuckets
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("elasticsearch search: facet %s: %w", facet, err)
	}
	for i, bucket := range b.Buckets {
		key := keyString(bucket.Key)
		switch facet {
		case model.FacetCategory, model.FacetBrand:
			id, label, _ := strings.Cut(key, "|") // ids never hold '|'
			c.AddTerm(facet, id, label, bucket.DocCount)
		case model.FacetPrice:
			c.AddPrice(i, bucket.DocCount)
		case model.FacetRating:
			if bucket.From == nil {
				return fmt.Errorf("elasticsearch search: rating band %q without a lower bound", key)
			}
			c.AddRating(*bucket.From, bucket.DocCount) // a band counts as its lower bound

		default:
			c.AddAttribute(strings.TrimPrefix(facet, model.AttributeFacetPrefix), key, bucket.DocCount, false)
		}
	}
	return nil
}

// keyString is a bucket key as text: a string unquoted, a number as written.
func keyString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// Suggest implements search.Engine. one suggestion per distinct name (its most popular product,
// ties by id), most popular first, among active products with a word of their name
// starting with the prefix.
func (e *Engine) Suggest(ctx context.Context, prefix string, limit int) ([]model.Suggestion, error) {
	prefix, err := search.SuggestPrefix(prefix, limit)
	if err != nil {
		return nil, err
	}
	out := []model.Suggestion{}
	if prefix == "" {
		return out, nil
	}
	body := obj{
		"size":    limit,
		"_source": false,
		"query": obj{"bool": obj{"filter": []any{
			obj{"term": obj{"status": "ACTIVE"}},
			obj{"prefix": obj{"suggest": obj{"value": prefix}}},
		}}},
		"sort":     []any{obj{"popularity": obj{"order": "desc"}}, obj{"product_id": obj{"order": "asc"}}},
		"collapse": obj{"field": "name.exact"},
	}
	var ans esSearchAnswer
	if err := e.Do(ctx, "POST", "/"+e.alias+"/_search", body, &ans); err != nil {
		return nil, fmt.Errorf("elasticsearch suggest: %w", err)
	}
	for _, h := range ans.Hits.Hits {
		if names := h.Fields["name.exact"]; len(names) > 0 {
			out = append(out, model.Suggestion{Text: names[0], ProductID: h.ID})
		}
	}
	return out, nil
}
