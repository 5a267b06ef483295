// Package relevance stores the merchandisers' relevance controls in PostgreSQL (synonyms,
// weights, query rules, and the search log behind insights) and reads them for the
// engines and the search service.
package relevance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
)

// Limits on relevance controls: beyond them a change is refused as BAD_USER_INPUT.
const (
	MaxSynonymTerms = 20  // terms (and synonyms) of one rule
	MaxTermLength   = 100 // characters of one term
	MaxPins         = 20  // pinned products of one query
	MaxInsights     = 100 // queries listed by Insights
)

// controlsTTL is how long a process serves the controls it read before reading them again:
// a change made through another server instance applies everywhere within it.
const controlsTTL = 2 * time.Second

// Controls stores the merchandisers' relevance controls (synonyms, weights, query rules) and
// the search log behind the insights, in PostgreSQL. Every change writes an outbox event
// (by trigger, in the same transaction) that the Elasticsearch indexer applies; the
// PostgreSQL engine reads synonyms through Controls. What searches read on every request
// (weights, the rule of a query, synonyms) comes from a snapshot reloaded every
// controlsTTL and dropped at once on a change made through this instance.
type Controls struct {
	pool *pgxpool.Pool
	ttl  time.Duration

	snap   atomic.Pointer[controlsSnapshot]
	gen    atomic.Uint64 // bumped by every local change; a load older than it is not kept
	loadMu sync.Mutex    // one load at a time
	// onChange, when set, is called after every change through this instance.
	onChange func()
}

// controlsSnapshot is what searches read of the controls at one moment.
type controlsSnapshot struct {
	at       time.Time
	synonyms *SynonymSet
	weights  model.RelevanceWeights
	rules    map[string]*model.QueryRule
}

// NewControls returns the controls stored in pool.
func NewControls(pool *pgxpool.Pool) *Controls {
	return &Controls{pool: pool, ttl: controlsTTL}
}

// normalizeTerm is a synonym term as the engines match it: its words (runs of letters and
// digits), lowercase, separated by single spaces. Punctuation goes, which also keeps terms
// safe in the Solr synonym format that Elasticsearch reads.
func normalizeTerm(term string) string {
	return strings.Join(search.Words(term), " ")
}

// current returns a fresh snapshot, loading one when the last is older than the TTL. When
// the database fails and an older snapshot exists, the older one serves.
func (c *Controls) current(ctx context.Context) (*controlsSnapshot, error) {
	if s := c.snap.Load(); s != nil && time.Since(s.at) < c.ttl {
		return s, nil
	}
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	old := c.snap.Load()
	if old != nil && time.Since(old.at) < c.ttl {
		return old, nil
	}
	gen := c.gen.Load()
	s, err := c.load(ctx)
	if err != nil {
		if old != nil {
			return old, nil
		}
		return nil, err
	}
	if c.gen.Load() == gen {
		c.snap.Store(s)
	}
	return s, nil
}

// OnChange makes every change through c call fn once it is stored, such as to drop cached
// search results at once. Set it before the controls are used.
func (c *Controls) OnChange(fn func()) { c.onChange = fn }

// Invalidate drops the snapshot, so that the next read loads the controls again: after a
// change through this instance, so that it reads its own writes, or after one made
// behind its back (as tests do).
func (c *Controls) Invalidate() {
	c.gen.Add(1)
	c.snap.Store(nil)
	if c.onChange != nil {
		c.onChange()
	}
}

const (
	listSynonymsSQL = `SELECT id::text, kind, terms, synonyms FROM search_synonyms ORDER BY created_at, id`
	getWeightsSQL   = `SELECT popularity, recency, margin FROM search_weights`
	listRulesSQL    = `SELECT query, pinned_ids::text[], boosts FROM search_query_rules ORDER BY query`
)

// load reads every control in one round trip.
func (c *Controls) load(ctx context.Context) (*controlsSnapshot, error) {
	b := &pgx.Batch{}
	var synonyms []*model.SynonymRule
	var rules []*model.QueryRule
	s := &controlsSnapshot{at: time.Now()}
	b.Queue(listSynonymsSQL).Query(func(rows pgx.Rows) (err error) {
		synonyms, err = pgx.CollectRows(rows, scanSynonym)
		return err
	})
	b.Queue(getWeightsSQL).QueryRow(func(row pgx.Row) error {
		return row.Scan(&s.weights.Popularity, &s.weights.Recency, &s.weights.Margin)
	})
	b.Queue(listRulesSQL).Query(func(rows pgx.Rows) (err error) {
		rules, err = pgx.CollectRows(rows, scanRule)
		return err
	})
	if err := c.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("load search controls: %w", err)
	}
	s.synonyms = NewSynonymSet(synonyms)
	s.rules = make(map[string]*model.QueryRule, len(rules))
	for _, r := range rules {
		s.rules[r.Query] = r
	}
	return s, nil
}

func scanSynonym(row pgx.CollectableRow) (*model.SynonymRule, error) {
	var r model.SynonymRule
	err := row.Scan(&r.ID, &r.Kind, &r.Terms, &r.Synonyms)
	return &r, err
}

// boostJSON is how a boost is stored in search_query_rules.boosts.
type boostJSON struct {
	BrandID    string  `json:"brandId,omitempty"`
	CategoryID string  `json:"categoryId,omitempty"`
	Factor     float64 `json:"factor"`
}

func scanRule(row pgx.CollectableRow) (*model.QueryRule, error) {
	var r model.QueryRule
	var boosts []boostJSON
	if err := row.Scan(&r.Query, &r.PinnedProductIDs, &boosts); err != nil {
		return nil, err
	}
	for _, b := range boosts {
		r.Boosts = append(r.Boosts, model.SearchBoost{BrandID: b.BrandID, CategoryID: b.CategoryID, Factor: b.Factor})
	}
	return &r, nil
}

// SynonymSet returns the synonyms searches expand with.
func (c *Controls) SynonymSet(ctx context.Context) (*SynonymSet, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	return s.synonyms, nil
}

// Synonyms lists the synonym rules, oldest first.
func (c *Controls) Synonyms(ctx context.Context) ([]*model.SynonymRule, error) {
	rows, err := c.pool.Query(ctx, listSynonymsSQL)
	if err != nil {
		return nil, fmt.Errorf("list synonyms: %w", err)
	}
	rules, err := pgx.CollectRows(rows, scanSynonym)
	if err != nil {
		return nil, fmt.Errorf("list synonyms: %w", err)
	}
	return rules, nil
}

const (
	insertSynonymSQL = `
INSERT INTO search_synonyms (kind, terms, synonyms) VALUES ($1, $2, $3)
RETURNING id::text, kind, terms, synonyms`
	updateSynonymSQL = `
UPDATE search_synonyms SET kind = $2, terms = $3, synonyms = $4, updated_at = now() WHERE id = $1
RETURNING id::text, kind, terms, synonyms`
)

// PutSynonym adds a rule (empty ID) or replaces the rule with its ID (NOT_FOUND when there
// is none). Terms are stored normalized: lowercase words separated by single spaces.
func (c *Controls) PutSynonym(ctx context.Context, rule model.SynonymRule) (*model.SynonymRule, error) {
	if err := normalizeSynonym(&rule); err != nil {
		return nil, err
	}
	var rows pgx.Rows
	var err error
	if rule.ID == "" {
		rows, err = c.pool.Query(ctx, insertSynonymSQL, string(rule.Kind), rule.Terms, rule.Synonyms)
	} else {
		rows, err = c.pool.Query(ctx, updateSynonymSQL, db.UUID(rule.ID), string(rule.Kind), rule.Terms, rule.Synonyms)
	}
	if err != nil {
		return nil, fmt.Errorf("put synonym: %w", err)
	}
	saved, err := pgx.CollectExactlyOneRow(rows, scanSynonym)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, model.NotFound("synonym rule")
	}
	if err != nil {
		return nil, fmt.Errorf("put synonym: %w", err)
	}
	c.Invalidate()
	return saved, nil
}

// normalizeSynonym checks a rule and normalizes its terms.
func normalizeSynonym(r *model.SynonymRule) error {
	if r.ID != "" && !model.IsUUID(r.ID) {
		return search.BadInput("input.id", "%q is not a synonym rule id", r.ID)
	}
	var err error
	if r.Terms, err = normalizeTerms("input.terms", r.Terms); err != nil {
		return err
	}
	if r.Synonyms, err = normalizeTerms("input.synonyms", r.Synonyms); err != nil {
		return err
	}
	switch r.Kind {
	case model.SynonymEquivalent:
		if len(r.Synonyms) > 0 {
			return search.BadInput("input.synonyms", "an EQUIVALENT rule lists all its terms in terms, and no synonyms")
		}
		if len(r.Terms) < 2 {
			return search.BadInput("input.terms", "an EQUIVALENT rule needs at least two different terms")
		}
	case model.SynonymOneWay:
		if len(r.Terms) == 0 || len(r.Synonyms) == 0 {
			return search.BadInput("input.synonyms", "a ONE_WAY rule needs terms and synonyms")
		}
	default:
		return search.BadInput("input.kind", "kind must be EQUIVALENT or ONE_WAY")
	}
	return nil
}

// normalizeTerms normalizes and deduplicates terms, refusing empty and overlong ones.
func normalizeTerms(arg string, terms []string) ([]string, error) {
	if len(terms) > MaxSynonymTerms {
		return nil, search.BadInput(arg, "at most %d terms", MaxSynonymTerms)
	}
	out := make([]string, 0, len(terms))
	for _, t := range terms {
		if n := utf8.RuneCountInString(t); n > MaxTermLength {
			return nil, search.BadInput(arg, "a term has %d characters: at most %d", n, MaxTermLength)
		}
		norm := normalizeTerm(t)
		if norm == "" {
			return nil, search.BadInput(arg, "term %q has no letters or digits", t)
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	return out, nil
}

const deleteSynonymSQL = `DELETE FROM search_synonyms WHERE id = $1`

// DeleteSynonym deletes a rule and says whether there was one.
func (c *Controls) DeleteSynonym(ctx context.Context, id string) (bool, error) {
	if !model.IsUUID(id) {
		return false, search.BadInput("id", "%q is not a synonym rule id", id)
	}
	tag, err := c.pool.Exec(ctx, deleteSynonymSQL, db.UUID(id))
	if err != nil {
		return false, fmt.Errorf("delete synonym: %w", err)
	}
	c.Invalidate()
	return tag.RowsAffected() > 0, nil
}

// Weights returns the relevance weights.
func (c *Controls) Weights(ctx context.Context) (model.RelevanceWeights, error) {
	s, err := c.current(ctx)
	if err != nil {
		return model.RelevanceWeights{}, err
	}
	return s.weights, nil
}

const setWeightsSQL = `
UPDATE search_weights SET popularity = $1, recency = $2, margin = $3, updated_at = now()
RETURNING popularity, recency, margin`

// SetWeights replaces the relevance weights; each is between 0 (off) and MaxWeight.
func (c *Controls) SetWeights(ctx context.Context, w model.RelevanceWeights) (model.RelevanceWeights, error) {
	if err := search.CheckWeights("input", w); err != nil {
		return model.RelevanceWeights{}, err
	}
	var out model.RelevanceWeights
	err := c.pool.QueryRow(ctx, setWeightsSQL, w.Popularity, w.Recency, w.Margin).Scan(&out.Popularity, &out.Recency, &out.Margin)
	if err != nil {
		return out, fmt.Errorf("set weights: %w", err)
	}
	c.Invalidate()
	return out, nil
}

// Rule returns the rule of a normalized query, or nil when it has none.
func (c *Controls) Rule(ctx context.Context, query string) (*model.QueryRule, error) {
	s, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	return s.rules[search.Normalize(query)], nil
}

// Rules lists the query rules by query.
func (c *Controls) Rules(ctx context.Context) ([]*model.QueryRule, error) {
	rows, err := c.pool.Query(ctx, listRulesSQL)
	if err != nil {
		return nil, fmt.Errorf("list query rules: %w", err)
	}
	rules, err := pgx.CollectRows(rows, scanRule)
	if err != nil {
		return nil, fmt.Errorf("list query rules: %w", err)
	}
	return rules, nil
}

const putRuleSQL = `
INSERT INTO search_query_rules (query, pinned_ids, boosts) VALUES ($1, $2, $3)
ON CONFLICT (query) DO UPDATE SET pinned_ids = excluded.pinned_ids, boosts = excluded.boosts, updated_at = now()
RETURNING query, pinned_ids::text[], boosts`

// PutRule sets the pinned products and boosts of a query, replacing what it had.
func (c *Controls) PutRule(ctx context.Context, rule model.QueryRule) (*model.QueryRule, error) {
	if err := normalizeRule(&rule); err != nil {
		return nil, err
	}
	boosts := make([]boostJSON, len(rule.Boosts))
	for i, b := range rule.Boosts {
		boosts[i] = boostJSON{BrandID: b.BrandID, CategoryID: b.CategoryID, Factor: b.Factor}
	}
	doc, err := json.Marshal(boosts)
	if err != nil {
		return nil, fmt.Errorf("encode boosts: %w", err)
	}
	rows, err := c.pool.Query(ctx, putRuleSQL, rule.Query, db.UUIDs(rule.PinnedProductIDs), string(doc))
	if err != nil {
		return nil, fmt.Errorf("put query rule: %w", err)
	}
	saved, err := pgx.CollectExactlyOneRow(rows, scanRule)
	if err != nil {
		return nil, fmt.Errorf("put query rule: %w", err)
	}
	c.Invalidate()
	return saved, nil
}

// normalizeRule checks a rule and normalizes its query.
func normalizeRule(r *model.QueryRule) error {
	r.Query = search.Normalize(r.Query)
	if r.Query == "" {
		return search.BadInput("input.query", "the query is empty")
	}
	if n := utf8.RuneCountInString(r.Query); n > search.MaxTextLength {
		return search.BadInput("input.query", "the query has %d characters: at most %d", n, search.MaxTextLength)
	}
	if len(r.PinnedProductIDs) > MaxPins {
		return search.BadInput("input.pinnedProductIds", "at most %d products can be pinned", MaxPins)
	}
	for i, id := range r.PinnedProductIDs {
		if !model.IsUUID(id) {
			return search.BadInput("input.pinnedProductIds", "%q is not a product id", id)
		}
		if slices.Contains(r.PinnedProductIDs[:i], id) {
			return search.BadInput("input.pinnedProductIds", "product %s is pinned twice", id)
		}
	}
	return search.CheckBoosts("input.boosts", r.Boosts)
}

const deleteRuleSQL = `DELETE FROM search_query_rules WHERE query = $1`

// DeleteRule deletes the rule of a query and says whether there was one.
func (c *Controls) DeleteRule(ctx context.Context, query string) (bool, error) {
	tag, err := c.pool.Exec(ctx, deleteRuleSQL, search.Normalize(query))
	if err != nil {
		return false, fmt.Errorf("delete query rule: %w", err)
	}
	c.Invalidate()
	return tag.RowsAffected() > 0, nil
}

// recordSearchSQL counts searches of a query: one upsert that, touching no indexed column,
// is a HOT update of the query's row.
const recordSearchSQL = `
INSERT INTO search_log AS l (query, searches, zero_results, last_seen, last_zero_at)
VALUES ($1, $3::bigint, $2::bigint, now(), CASE WHEN $2::bigint > 0 THEN now() END)
ON CONFLICT (query) DO UPDATE SET
    searches = l.searches + excluded.searches,
    zero_results = l.zero_results + excluded.zero_results,
    last_seen = excluded.last_seen,
    last_zero_at = coalesce(excluded.last_zero_at, l.last_zero_at)`

// RecordSearch counts a search of text that found total products, for the insights.
// Browsing (no words) is not a query and is not recorded.
func (c *Controls) RecordSearch(ctx context.Context, text string, total int) error {
	query := search.Normalize(text)
	if query == "" {
		return nil
	}
	if n := utf8.RuneCountInString(query); n > search.MaxTextLength {
		return search.BadInput("query", "the query has %d characters: at most %d", n, search.MaxTextLength)
	}
	if total < 0 {
		return search.BadInput("total", "a search finds at least 0 products")
	}
	zero := 0
	if total == 0 {
		zero = 1
	}
	return c.RecordSearches(ctx, query, 1, zero)
}

// RecordSearches counts searches of text at once, zeroResults of which found nothing: the
// search service counts in memory and writes a query's count once per flush.
func (c *Controls) RecordSearches(ctx context.Context, text string, searches, zeroResults int) error {
	query := search.Normalize(text)
	if query == "" || searches <= 0 {
		return nil
	}
	if _, err := c.pool.Exec(ctx, recordSearchSQL, query, zeroResults, searches); err != nil {
		return fmt.Errorf("record search: %w", err)
	}
	return nil
}

// insightsSQL lists the most searched queries and the queries that most often found
// nothing. The log is small (one row per distinct query) and read rarely: a sort beats an
// index that every search would have to update.
const insightsSQL = `
(SELECT 'top' AS list, query, searches AS n, last_seen AS seen FROM search_log
  ORDER BY searches DESC, query LIMIT $1)
UNION ALL
(SELECT 'zero', query, zero_results, last_zero_at FROM search_log WHERE zero_results > 0
  ORDER BY zero_results DESC, query LIMIT $1)`

// Insights returns the limit most searched queries and the limit queries that most often
// found nothing, with their counts (searches, and searches that found nothing).
func (c *Controls) Insights(ctx context.Context, limit int) (*model.SearchInsights, error) {
	if limit < 1 || limit > MaxInsights {
		return nil, search.BadInput("first", "first must be between 1 and %d", MaxInsights)
	}
	rows, err := c.pool.Query(ctx, insightsSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("search insights: %w", err)
	}
	out := &model.SearchInsights{TopQueries: []model.SearchQueryStat{}, ZeroResultQueries: []model.SearchQueryStat{}}
	var list string
	var stat model.SearchQueryStat
	_, err = pgx.ForEachRow(rows, []any{&list, &stat.Query, &stat.Count, &stat.LastSeen}, func() error {
		if list == "top" {
			out.TopQueries = append(out.TopQueries, stat)
		} else {
			out.ZeroResultQueries = append(out.ZeroResultQueries, stat)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("search insights: %w", err)
	}
	return out, nil
}

// SynonymLines writes rules in the Solr synonym format that Elasticsearch's synonym_graph
// filter reads: "couch, settee, sofa" for an EQUIVALENT rule and "loveseat => loveseat,
// sofa" for a ONE_WAY one (the term keeps finding itself). Terms are normalized words, so
// they never hold the format's separators.
func SynonymLines(rules []*model.SynonymRule) []string {
	lines := make([]string, 0, len(rules))
	for _, r := range rules {
		if r.Kind == model.SynonymEquivalent {
			lines = append(lines, strings.Join(r.Terms, ", "))
			continue
		}
		for _, t := range r.Terms {
			right := append([]string{t}, r.Synonyms...)
			lines = append(lines, t+" => "+strings.Join(right, ", "))
		}
	}
	return lines
}
