package indexer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/elastic"
	"github.com/homegoods/storefront/search/searchtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestElasticQuerySyntaxIsWords: what a shopper types is matched as words, never parsed:
// query-string syntax finds the products that hold the words and nothing more, and text
// that would break a parser is no error.
func TestElasticQuerySyntaxIsWords(t *testing.T) {
	pool := searchtest.SeededPool(t, 50)
	var category string
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT id::text FROM categories WHERE slug = 'armchairs'`).Scan(&category); err != nil {
		t.Fatal(err)
	}
	foo := searchtest.CreateProduct(t, pool, "FOO-1", "foo-name-chair", "Foo Name Chair", category, 1000)
	_, es := newTestIndexer(t, pool, search.DefaultConfig())
	ids := func(text string) []string {
		t.Helper()
		res, err := es.Search(ctx, model.SearchQuery{Text: text, First: 100})
		if err != nil {
			t.Fatalf("search %q: %v", text, err)
		}
		out := []string{}
		for _, h := range res.Hits {
			out = append(out, h.ProductID)
		}
		return out
	}
	if got := ids("name:foo OR *"); strings.Join(got, ",") != foo {
		t.Errorf(`search "name:foo OR *" found %v; want only %s (the words "name" and "foo")`, got, foo)
	}
	// Each text finds what its words find ("or", "and", "not" are stop words).
	for _, tc := range []struct{ text, words string }{
		{"name:foo AND NOT chair", "name foo chair"},
		{`"foo" chair~ name^10 (`, "foo chair name 10"},
		{"*", ""},
		{"description:* OR status:DRAFT", "description status draft"},
		{`{"match_all":{}}`, "match"},
		{`\" ) ] } /regex/ <script>`, "regex script"},
	} {
		if got, want := ids(tc.text), ids(tc.words); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("search %q found %v; want what %q finds: %v", tc.text, got, tc.words, want)
		}
	}
}

// TestElasticRefusesBadInput: the engine validates queries itself as well.
func TestElasticRefusesBadInput(t *testing.T) {
	es, err := elastic.New(elastic.Config{URL: "http://127.0.0.1:1", Index: "products", Facets: search.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("sofa ", 2000)
	neg := model.Cents(-5)
	for _, q := range []model.SearchQuery{
		{Text: long},
		{Filter: model.SearchFilter{Price: &model.PriceRange{Min: &neg}}},
		{Filter: model.SearchFilter{Attributes: []model.AttributeFilter{{Key: "nope", Values: []string{"x"}}}}},
		{After: "not-a-cursor"},
	} {
		_, err := es.Search(context.Background(), q)
		if model.ErrorCodeOf(err) != model.CodeBadUserInput {
			t.Errorf("search %.40q...: err %v; want BAD_USER_INPUT", q.Text, err)
		}
	}
	if _, err := es.Suggest(context.Background(), strings.Repeat("a", 60), 5); model.ErrorCodeOf(err) != model.CodeBadUserInput {
		t.Errorf("suggest with a 60-character prefix: err %v; want BAD_USER_INPUT", err)
	}
}

// TestElasticConformance runs the conformance suite against the Elasticsearch engine on an
// index the indexer builds from the suite's catalog; synonyms the suite adds reach the index
// the way they do in production, as a controls event handled by the indexer, whose synonym
// worker then rebuilds the index behind its alias.
func TestElasticConformance(t *testing.T) {
	searchtest.ElasticURL(t)
	var ix *Indexer
	searchtest.RunConformance(t, func(t *testing.T, pool *pgxpool.Pool, cfg search.Config) search.Engine {
		var es *elastic.Engine
		ix, es = newTestIndexer(t, pool, cfg)
		return es
	}, searchtest.Hooks{ControlsChanged: func(t *testing.T) {
		controlsChanged := model.OutboxEvent{Aggregate: "search", AggregateID: "controls",
			Kind: "search.controls.updated", CreatedAt: time.Now()}
		if err := ix.Handle(context.Background(), []model.OutboxEvent{controlsChanged}); err != nil {
			t.Fatalf("apply the controls: %v", err)
		}
		if err := ix.UpdateSynonyms(context.Background()); err != nil {
			t.Fatalf("rebuild with the new synonyms: %v", err)
		}
	}})
}
