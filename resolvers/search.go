package resolvers

import (
	"context"

	"github.com/homegoods/storefront/graph/model"
)

// Searcher answers searches and suggestions (the search service: Elasticsearch with
// PostgreSQL as its fallback, or PostgreSQL alone).
type Searcher interface {
	Search(ctx context.Context, q model.SearchQuery) (*model.SearchResult, error)
	Suggest(ctx context.Context, prefix string, limit int) ([]model.Suggestion, error)
}

// SearchControls are the merchandisers' relevance controls and the search insights.
type SearchControls interface {
	Synonyms(ctx context.Context) ([]*model.SynonymRule, error)
	PutSynonym(ctx context.Context, rule model.SynonymRule) (*model.SynonymRule, error)
	DeleteSynonym(ctx context.Context, id string) (bool, error)
	Weights(ctx context.Context) (model.RelevanceWeights, error)
	SetWeights(ctx context.Context, w model.RelevanceWeights) (model.RelevanceWeights, error)
	Rules(ctx context.Context) ([]*model.QueryRule, error)
	PutRule(ctx context.Context, rule model.QueryRule) (*model.QueryRule, error)
	DeleteRule(ctx context.Context, query string) (bool, error)
	Insights(ctx context.Context, limit int) (*model.SearchInsights, error)
}

// searchQuery turns the arguments of Query.search into a search, decoding global ids.
func searchQuery(text *string, filter *model.SearchFilter, sort *model.SearchSort, first *int, after *string) (model.SearchQuery, error) {
	q := model.SearchQuery{Text: deref(text), Sort: model.SearchSortRelevance, After: deref(after)}
	if sort != nil {
		q.Sort = *sort
	}
	if first != nil {
		if *first <= 0 {
			return q, model.InvalidArgument("first", "first must be at least 1")
		}
		q.First = *first
	}
	if filter == nil {
		return q, nil
	}
	q.Filter = *filter
	var err error
	if q.Filter.CategoryIDs, err = decodeIDs("filter.categoryIds", model.TypeCategory, filter.CategoryIDs); err != nil {
		return q, err
	}
	q.Filter.BrandIDs, err = decodeIDs("filter.brandIds", model.TypeBrand, filter.BrandIDs)
	return q, err
}

// presentResult makes a copy of a result fit for clients (the searcher's may be shared by
// a cache): category and brand facet values become global ids with the names as labels,
// and pinned products that are no longer visible go.
func presentResult(ctx context.Context, shared *model.SearchResult) (*model.SearchResult, error) {
	res := shared.Copy()
	l := loaders(ctx)
	for i := range res.Facets {
		f := &res.Facets[i]
		var err error
		switch f.Key {
		case model.FacetCategory:
			err = labelValues(ctx, f.Values, model.TypeCategory, l.Category.GetMany, func(c *model.Category) string { return c.Name })
		case model.FacetBrand:
			err = labelValues(ctx, f.Values, model.TypeBrand, l.Brand.GetMany, func(b *model.Brand) string { return b.Name })
		}
		if err != nil {
			return nil, err
		}
	}
	return res, dropHiddenPins(ctx, res)
}

// labelValues labels facet values that are database ids with their objects' names and
// turns them into global ids.
func labelValues[V any](ctx context.Context, values []model.FacetValue, typ string,
	load func(context.Context, []string) ([]V, []error), name func(V) string) error {
	ids := make([]string, len(values))
	for i, v := range values {
		ids[i] = v.Value
	}
	objs, errs := load(ctx, ids)
	for i := range values {
		if i < len(errs) && errs[i] != nil {
			if model.ErrorCodeOf(errs[i]) == model.CodeNotFound {
				continue // deleted since it was indexed: keep its count, unnamed
			}
			return errs[i]
		}
		values[i].Label = name(objs[i])
		values[i].Value = model.GlobalID(typ, values[i].Value)
	}
	return nil
}

// dropHiddenPins removes pinned products the caller may not see (archived since pinned).
func dropHiddenPins(ctx context.Context, res *model.SearchResult) error {
	hits := res.Hits[:0]
	for _, h := range res.Hits {
		if h.Pinned {
			p, err := loaders(ctx).Product.Get(ctx, h.ProductID)
			if err != nil && model.ErrorCodeOf(err) != model.CodeNotFound {
				return err
			}
			if err != nil || !visible(ctx, p) {
				res.Total--
				continue
			}
		}
		hits = append(hits, h)
	}
	res.Hits = hits
	return nil
}

// queryRule decodes the global ids of a query rule.
func queryRule(in model.QueryRuleInput) (model.QueryRule, error) {
	pins, err := decodeIDs("input.pinnedProductIds", model.TypeProduct, in.PinnedProductIds)
	if err != nil {
		return model.QueryRule{}, err
	}
	rule := model.QueryRule{Query: in.Query, PinnedProductIDs: pins}
	for _, b := range in.Boosts {
		boost := model.SearchBoost{Factor: b.Factor}
		if (b.BrandID == nil) == (b.CategoryID == nil) {
			return rule, model.InvalidArgument("input.boosts", "a boost names exactly one of brandId and categoryId")
		}
		if b.BrandID != nil {
			boost.BrandID, err = decodeID("input.boosts.brandId", model.TypeBrand, *b.BrandID)
		} else {
			boost.CategoryID, err = decodeID("input.boosts.categoryId", model.TypeCategory, *b.CategoryID)
		}
		if err != nil {
			return rule, err
		}
		rule.Boosts = append(rule.Boosts, boost)
	}
	return rule, nil
}

// optionalLoad loads an object by an id that may be empty.
func optionalLoad[V any](ctx context.Context, l *loader[V], id string) (V, error) {
	var zero V
	if id == "" {
		return zero, nil
	}
	v, err := l.Get(ctx, id)
	if err != nil && model.ErrorCodeOf(err) == model.CodeNotFound {
		return zero, nil
	}
	return v, err
}
