package search

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/homegoods/storefront/breaker"
	"github.com/homegoods/storefront/graph/model"
)

// controlSource is what the service reads of the merchandisers' relevance controls.
type controlSource interface {
	Rule(ctx context.Context, query string) (*model.QueryRule, error)
	Weights(ctx context.Context) (model.RelevanceWeights, error)
	RecordSearches(ctx context.Context, text string, searches, zeroResults int) error
}

// ServiceOptions tune a Service; zero values take the defaults.
type ServiceOptions struct {
	// Timeout bounds one call to the primary engine (default 500ms): past it the fallback
	// answers, so a slow Elasticsearch costs at most this much latency.
	Timeout time.Duration
	// OpenFor is how long the breaker stays open after the primary failed (default 5s).
	OpenFor time.Duration
	// Failures in a row that open the breaker (default 3).
	Failures uint32
	// FlushEvery is how often the recorded searches are written for insights (default 5s).
	FlushEvery time.Duration
	// OnAnswer, when set, is told which backend answered each search and suggestion.
	OnAnswer func(backend string, degraded bool)
	// Cache, when set, keeps the answers of searches for a short time, by their words,
	// filters, sort and page; nil asks the engine every time.
	Cache ResultCache
}

// ResultCache keeps answers of searches: Do returns key's answer, from the cache or else
// from compute, which also says whether its answer may be kept. The cache must drop its
// answers when the catalog or the relevance controls change, and callers must not change
// an answer they get (see model.SearchResult.Copy).
type ResultCache interface {
	Do(ctx context.Context, key string, compute func(context.Context) (*model.SearchResult, bool, error)) (*model.SearchResult, error)
}

// Service is what resolvers search through: it validates the query, applies the
// merchandisers' controls, asks the primary engine behind a circuit breaker and falls back
// to the other engine when the primary fails or its breaker is open, and records queries
// for insights. With no primary, the fallback is the only engine.
type Service struct {
	primary  Engine // nil without Elasticsearch
	fallback Engine
	breaker  *breaker.Breaker
	controls controlSource
	cfg      Config
	opts     ServiceOptions
	log      *slog.Logger

	mu     sync.Mutex
	counts map[string]searchCount // searches since the last flush, by normalized query
}

// searchCount is how often a query was searched since the last flush, and how often it
// found nothing.
type searchCount struct {
	n, zero int
}

// NewService returns a service answering from primary (may be nil) and fallback.
func NewService(primary, fallback Engine, controls controlSource, cfg Config, opts ServiceOptions, log *slog.Logger) *Service {
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	if opts.OpenFor <= 0 {
		opts.OpenFor = 5 * time.Second
	}
	if opts.Failures == 0 {
		opts.Failures = 3
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 5 * time.Second
	}
	s := &Service{primary: primary, fallback: fallback, controls: controls, cfg: cfg, opts: opts,
		log: log.With("component", "search"), counts: map[string]searchCount{}}
	s.breaker = breaker.New(breaker.Options{
		Failures: int(opts.Failures),
		CoolDown: opts.OpenFor,
		Timeout:  opts.Timeout,
		// A refused query says nothing about the engine's health.
		Harmless: func(err error) bool { return model.ErrorCodeOf(err) == model.CodeBadUserInput },
		OnChange: func(from, to breaker.State, _ error) {
			s.log.Warn("search breaker", "from", from.String(), "to", to.String())
		},
	})
	return s
}

// Config returns the facet configuration the service validates against.
func (s *Service) Config() Config { return s.cfg }

// Search answers q, with the pinned products of its query first on the first page of the
// relevance sort.
func (s *Service) Search(ctx context.Context, q model.SearchQuery) (*model.SearchResult, error) {
	if err := s.cfg.Validate(&q); err != nil {
		return nil, err
	}
	var res *model.SearchResult
	var err error
	if s.opts.Cache == nil {
		res, err = s.search(ctx, q)
	} else {
		res, err = s.opts.Cache.Do(ctx, cacheKey(q), func(ctx context.Context) (*model.SearchResult, bool, error) {
			res, err := s.search(ctx, q)
			return res, err == nil && !res.Degraded, err
		})
	}
	if err != nil {
		return nil, err
	}
	s.record(q.Text, res.Total)
	return res, nil
}

// cacheKey names a validated query in the result cache: its words as Normalize makes them,
// filters with their values in order, sort and page.
func cacheKey(q model.SearchQuery) string {
	f := q.Filter
	f.CategoryIDs, f.BrandIDs = sorted(f.CategoryIDs), sorted(f.BrandIDs)
	f.Attributes = slices.Clone(f.Attributes)
	for i := range f.Attributes {
		f.Attributes[i].Values = sorted(f.Attributes[i].Values)
	}
	slices.SortFunc(f.Attributes, func(a, b model.AttributeFilter) int { return strings.Compare(a.Key, b.Key) })
	key, _ := json.Marshal(struct {
		Text, Sort, After string
		First             int
		Filter            model.SearchFilter
	}{Normalize(q.Text), string(q.Sort), q.After, q.First, f})
	return string(key)
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// search answers q from the engines, with the pinned products of its query first on the
// first page of the relevance sort.
func (s *Service) search(ctx context.Context, q model.SearchQuery) (*model.SearchResult, error) {
	pins, err := s.applyControls(ctx, &q)
	if err != nil {
		return nil, err
	}
	res, err := call(ctx, s, func(ctx context.Context, e Engine) (*model.SearchResult, error) { return e.Search(ctx, q) })
	if err != nil {
		return nil, err
	}
	if len(pins) > 0 && q.After == "" {
		res.Hits = append(pinnedHits(pins), res.Hits...)
		res.Total += len(pins)
	}
	return res, nil
}

// Suggest proposes product names for an autocomplete prefix.
func (s *Service) Suggest(ctx context.Context, prefix string, limit int) ([]model.Suggestion, error) {
	if len([]rune(prefix)) > MaxPrefixLength {
		return nil, BadInput("prefix", "the prefix is too long: at most %d characters", MaxPrefixLength)
	}
	if limit <= 0 || limit > MaxFirst {
		return nil, BadInput("first", "first must be between 1 and %d", MaxFirst)
	}
	return call(ctx, s, func(ctx context.Context, e Engine) ([]model.Suggestion, error) { return e.Suggest(ctx, prefix, limit) })
}

// applyControls sets the merchandisers' weights and the query's boosts on q, and returns
// the products pinned for it, which the engines then leave out. Pins apply to the relevance
// sort of a query without filters: a shopper who narrows the result sees organic results.
func (s *Service) applyControls(ctx context.Context, q *model.SearchQuery) ([]string, error) {
	if s.controls == nil {
		return nil, nil
	}
	w, err := s.controls.Weights(ctx)
	if err != nil {
		return nil, err
	}
	q.Weights = w
	if q.Text == "" {
		return nil, nil
	}
	rule, err := s.controls.Rule(ctx, Normalize(q.Text))
	if err != nil || rule == nil {
		return nil, err
	}
	q.Boosts = rule.Boosts
	if q.Sort != model.SearchSortRelevance || !filterEmpty(q.Filter) || len(rule.PinnedProductIDs) == 0 {
		return nil, nil
	}
	q.ExcludeIDs = append(q.ExcludeIDs, rule.PinnedProductIDs...)
	return rule.PinnedProductIDs, nil
}

func filterEmpty(f model.SearchFilter) bool {
	return len(f.CategoryIDs) == 0 && len(f.BrandIDs) == 0 && f.Price == nil && f.MinRating == nil && len(f.Attributes) == 0
}

// pinnedHits are the pinned products as hits. Their cursor is empty: a page that ends on a
// pin is not paged from it (the first page always holds organic hits after the pins).
func pinnedHits(ids []string) []model.SearchHit {
	hits := make([]model.SearchHit, len(ids))
	for i, id := range ids {
		hits[i] = model.SearchHit{ProductID: id, Pinned: true}
	}
	return hits
}

// call runs fn on the primary engine through the breaker, and on the fallback when there is
// no primary, its breaker is open, or it failed. A client error is returned as it is.
func call[T any](ctx context.Context, s *Service, fn func(context.Context, Engine) (T, error)) (T, error) {
	if s.primary == nil {
		v, err := fn(ctx, s.fallback)
		s.answered(s.fallback, false)
		return v, err
	}
	var got T
	err := s.breaker.Do(ctx, func(ctx context.Context) (err error) {
		got, err = fn(ctx, s.primary)
		return err
	})
	if err == nil {
		s.answered(s.primary, false)
		return got, nil
	}
	if model.ErrorCodeOf(err) == model.CodeBadUserInput || ctx.Err() != nil {
		var zero T
		return zero, err
	}
	if !errors.Is(err, breaker.ErrOpen) {
		s.log.Warn("search: primary engine failed, answering from the fallback", "engine", s.primary.Name(), "err", err)
	}
	v, ferr := fn(ctx, s.fallback)
	s.answered(s.fallback, true)
	if r, ok := any(v).(*model.SearchResult); ok && r != nil {
		r.Degraded = true
	}
	return v, ferr
}

func (s *Service) answered(e Engine, degraded bool) {
	if s.opts.OnAnswer != nil {
		s.opts.OnAnswer(e.Name(), degraded)
	}
}

// record counts a search for insights; Run writes the counts out in batches, so that a
// popular query costs one upsert per flush rather than one per search.
func (s *Service) record(text string, total int) {
	if text == "" || s.controls == nil {
		return
	}
	key := Normalize(text)
	s.mu.Lock()
	c := s.counts[key]
	c.n++
	if total == 0 {
		c.zero++
	}
	s.counts[key] = c
	s.mu.Unlock()
}

// Run flushes recorded searches every FlushEvery until ctx ends, then once more.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Flush(context.WithoutCancel(ctx))
			return ctx.Err()
		case <-t.C:
			s.Flush(ctx)
		}
	}
}

// Flush writes the searches recorded since the last flush.
func (s *Service) Flush(ctx context.Context) {
	s.mu.Lock()
	counts := s.counts
	s.counts = map[string]searchCount{}
	s.mu.Unlock()
	for query, c := range counts {
		if err := s.controls.RecordSearches(ctx, query, c.n, c.zero); err != nil {
			s.log.Warn("search: record queries for insights", "err", err)
			return
		}
	}
}
