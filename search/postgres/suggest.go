package postgres

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
)

// Suggestions are active products with a word of their name starting with the prefix: LIKE
// '%prefix%' finds candidates (on the trigram index of lower(name)), the regular expression
// checks that the match starts a word. One suggestion per distinct name, its most popular
// product (ties by id), most popular first.
//
// Autocomplete runs on every keystroke, and short prefixes match thousands of products,
// which the trigram index would all fetch to sort them. So the most popular products are
// read first, in the order of their index: when they hold enough distinct names, the last
// of them more popular than any product outside the window, that is the answer. Otherwise
// (a rare prefix) the trigram index finds the few products that match.

// suggestWindow is how many of the most popular products the first query reads.
const suggestWindow = 1000

const suggestPopularSQL = `
WITH top AS MATERIALIZED (
    SELECT id, name, popularity FROM products WHERE status = 'ACTIVE'
     ORDER BY popularity DESC, id DESC LIMIT $3)
SELECT name, id::text, popularity, (SELECT min(popularity) FROM top), (SELECT count(*) FROM top)
  FROM top
 WHERE lower(name) LIKE $1 AND lower(name) ~ $2
 ORDER BY popularity DESC, id`

const suggestSQL = `
SELECT name, id::text, popularity, 0, 0 FROM products
 WHERE status = 'ACTIVE' AND lower(name) LIKE $1 AND lower(name) ~ $2
 ORDER BY popularity DESC, id
 LIMIT $3`

// maxSuggestScan bounds how many products the second query reads to find distinct names.
const maxSuggestScan = 10_000

// suggestion is a candidate with what decides whether the window settled the answer.
type suggestion struct {
	model.Suggestion
	popularity int
	floor      int // the least popularity in the window
	window     int // products in the window
}

// Suggest implements search.Engine.
func (e *Engine) Suggest(ctx context.Context, prefix string, limit int) ([]model.Suggestion, error) {
	prefix, err := search.SuggestPrefix(prefix, limit)
	if err != nil {
		return nil, err
	}
	if prefix == "" {
		return []model.Suggestion{}, nil
	}
	like := "%" + pgEscapeLike(prefix) + "%"
	word := `(^|[^[:alnum:]])` + regexp.QuoteMeta(prefix)
	found, err := e.suggestions(ctx, suggestPopularSQL, like, word, suggestWindow)
	if err != nil {
		return nil, err
	}
	out, last := distinctNames(found, limit)
	if len(found) > 0 && (found[0].window < suggestWindow || len(out) == limit && last.popularity > last.floor) {
		return out, nil
	}
	// Names repeat: read more products until limit distinct names or the end.
	for scan := 4 * limit; ; scan *= 2 {
		if found, err = e.suggestions(ctx, suggestSQL, like, word, scan); err != nil {
			return nil, err
		}
		out, _ = distinctNames(found, limit)
		if len(out) == limit || len(found) < scan || scan >= maxSuggestScan {
			return out, nil
		}
	}
}

// suggestions runs a suggestion query. Simple protocol: the plan depends on the pattern.
func (e *Engine) suggestions(ctx context.Context, sql, like, word string, n int) ([]suggestion, error) {
	rows, err := e.read(ctx).Query(ctx, sql, pgx.QueryExecModeSimpleProtocol, like, word, n)
	if err != nil {
		return nil, fmt.Errorf("postgres suggest: %w", err)
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (suggestion, error) {
		var s suggestion
		return s, row.Scan(&s.Text, &s.ProductID, &s.popularity, &s.floor, &s.window)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres suggest: %w", err)
	}
	return found, nil
}

// distinctNames keeps the first candidate of each name, at most limit, and returns the last
// one kept.
func distinctNames(found []suggestion, limit int) ([]model.Suggestion, suggestion) {
	seen := map[string]bool{}
	out := []model.Suggestion{}
	var last suggestion
	for _, s := range found {
		if !seen[s.Text] && len(out) < limit {
			seen[s.Text] = true
			out = append(out, s.Suggestion)
			last = s
		}
	}
	return out, last
}
