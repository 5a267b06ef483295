package search

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/store"
)

// fakeServer answers GET / as a server of the given distribution ("" for none) and every
// other request with an empty search answer, never with X-Elastic-Product unless withHeader.
func fakeServer(t *testing.T, distribution string, withHeader bool) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var roots atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if withHeader {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
		}
		if r.URL.Path == "/" {
			roots.Add(1)
			_, _ = w.Write([]byte(`{"version":{"distribution":"` + distribution + `","number":"2.19.6"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"hits":{"total":{"value":0},"hits":[]}}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &roots
}

// TestProductHeaderTransport: go-elasticsearch refuses servers that do not say they are
// Elasticsearch; the transport vouches for a server that says it is OpenSearch, asking it
// once, and for no other.
func TestProductHeaderTransport(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		distribution string
		header       bool
		wantOK       bool
		wantProbes   int32
	}{
		{"opensearch", "opensearch", false, true, 1},
		{"elasticsearch", "", true, true, 0},
		{"something else", "", false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, roots := fakeServer(t, tc.distribution, tc.header)
			es, err := NewElastic(ElasticConfig{URL: srv.URL, Index: "products", Facets: DefaultConfig()})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				err = es.do(ctx, "POST", "/products/_search", obj{"size": 0}, nil)
			}
			if ok := err == nil; ok != tc.wantOK {
				t.Fatalf("request through the client: err %v; want success %v", err, tc.wantOK)
			}
			if !tc.wantOK && !strings.Contains(err.Error(), "Elasticsearch") {
				t.Errorf("refusal %q does not say why", err)
			}
			if got := roots.Load(); got != tc.wantProbes {
				t.Errorf("GET / asked %d times; want %d", got, tc.wantProbes)
			}
		})
	}
}

// TestElasticQuerySyntaxIsWords: what a shopper types is matched as words, never parsed:
// query-string syntax finds the products that hold the words and nothing more, and text
// that would break a parser is no error.
func TestElasticQuerySyntaxIsWords(t *testing.T) {
	pool := seededPool(t, 50)
	var category string
	ctx := context.Background()
	if err := pool.QueryRow(ctx, `SELECT id::text FROM categories WHERE slug = 'armchairs'`).Scan(&category); err != nil {
		t.Fatal(err)
	}
	st := store.New(pool)
	active := model.ProductStatusActive
	foo, err := st.CreateProduct(ctx, model.CreateProductInput{Sku: "FOO-1", Slug: ptrTo("foo-name-chair"),
		Name: "Foo Name Chair", CategoryID: category, Price: 1000, Status: &active})
	if err != nil {
		t.Fatal(err)
	}
	_, es := newTestIndexer(t, pool, DefaultConfig())
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
	if got := ids("name:foo OR *"); strings.Join(got, ",") != foo.ID {
		t.Errorf(`search "name:foo OR *" found %v; want only %s (the words "name" and "foo")`, got, foo.ID)
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

func ptrTo[T any](v T) *T { return &v }

// TestElasticRefusesBadInput: the engine validates queries itself as well.
func TestElasticRefusesBadInput(t *testing.T) {
	es, err := NewElastic(ElasticConfig{URL: "http://127.0.0.1:1", Index: "products", Facets: DefaultConfig()})
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
	elasticURL(t)
	var ix *Indexer
	runConformance(t, func(t *testing.T, pool *pgxpool.Pool, cfg Config) Engine {
		var es *Elastic
		ix, es = newTestIndexer(t, pool, cfg)
		return es
	}, conformanceHooks{ControlsChanged: func(t *testing.T) {
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
