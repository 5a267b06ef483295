package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/relevance"
	"github.com/homegoods/storefront/search/searchtest"
	"github.com/homegoods/storefront/seed"
)

// newSeededPostgres returns the engine over a fresh catalog of n products (seed 3).
func newSeededPostgres(t *testing.T, n int) (*Engine, *pgxpool.Pool) {
	t.Helper()
	pool := dbtest.New(t)
	if _, err := seed.Catalog(context.Background(), pool, seed.Options{Products: n, Seed: 3}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return New(pool, search.DefaultConfig(), relevance.NewControls(pool)), pool
}

func pgExec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pgFoundIDs searches text and returns the ids found (first page of 100).
func pgFoundIDs(t *testing.T, e search.Engine, q model.SearchQuery) []string {
	t.Helper()
	q.First = search.MaxFirst
	res, err := e.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %+v: %v", q, err)
	}
	var out []string
	for _, h := range res.Hits {
		out = append(out, h.ProductID)
	}
	return out
}

// Search reads search_docs, which triggers keep in step with products in the writing
// transaction: every change is searchable as soon as it commits.
func TestPostgresFollowsCatalogWrites(t *testing.T) {
	e, pool := newSeededPostgres(t, 200)
	var categoryID, brandID string
	if err := pool.QueryRow(context.Background(), `SELECT category_id::text, brand_id::text FROM products LIMIT 1`).Scan(&categoryID, &brandID); err != nil {
		t.Fatal(err)
	}
	const id = "0b4f2a3e-5f7c-4d2b-9a61-3c8e0f1d2a4b"
	pgExec(t, pool, `INSERT INTO products (id, sku, slug, name, description, category_id, brand_id, price_cents, status, attributes)
		VALUES ($1, 'ZEB-1', 'zebrawood-console', 'Zebrawood Console', 'A striped console.', $2, $3, 12345, 'DRAFT', '{"color": "striped"}')`,
		id, categoryID, brandID)
	if got := pgFoundIDs(t, e, model.SearchQuery{Text: "zebrawood"}); len(got) != 0 {
		t.Errorf("a draft is found: %v", got)
	}

	pgExec(t, pool, `UPDATE products SET status = 'ACTIVE' WHERE id = $1`, id)
	if got := pgFoundIDs(t, e, model.SearchQuery{Text: "zebrawood"}); !slices.Equal(got, []string{id}) {
		t.Errorf("after activation: %v; want the product", got)
	}
	// Its new word is vocabulary at once: a typo of it finds it.
	if got := pgFoundIDs(t, e, model.SearchQuery{Text: "zebrawod"}); !slices.Equal(got, []string{id}) {
		t.Errorf("zebrawod: %v; want the product (one edit from a new word)", got)
	}
	pgExec(t, pool, `UPDATE products SET name = 'Tigerwood Console', attributes = '{"color": "amber"}', price_cents = 99 WHERE id = $1`, id)
	if got := pgFoundIDs(t, e, model.SearchQuery{Text: "tigerwood"}); !slices.Equal(got, []string{id}) {
		t.Errorf("after a rename: %v; want the product", got)
	}
	amber := []model.AttributeFilter{{Key: "color", Values: []string{"amber"}}}
	res, err := e.Search(context.Background(), model.SearchQuery{Filter: model.SearchFilter{Attributes: amber}})
	if err != nil || res.Total != 1 || res.PriceRange == nil || res.PriceRange.Min != 99 {
		t.Errorf("color amber: %+v, %v; want the product at 99 cents", res, err)
	}
	// Its new attribute value has a code and its set of values a number at once: the facets
	// of its words count it.
	res, err = e.Search(context.Background(), model.SearchQuery{Text: "tigerwood"})
	if err != nil || !slices.ContainsFunc(res.Facets, func(f model.Facet) bool {
		return f.Key == "attr.color" && len(f.Values) == 1 && f.Values[0] == model.FacetValue{Value: "amber", Label: "amber", Count: 1}
	}) {
		t.Errorf("tigerwood: facets %+v, %v; want color amber counted once", res.Facets, err)
	}

	// A renamed brand renames the products' vectors (0001), and with them search_docs.
	pgExec(t, pool, `UPDATE brands SET name = 'Quokkaline' WHERE id = $1`, brandID)
	if got := pgFoundIDs(t, e, model.SearchQuery{Text: "quokkaline"}); !slices.Contains(got, id) {
		t.Errorf("after a brand rename: %d found; want the brand's products", len(got))
	}
	pgExec(t, pool, `UPDATE products SET status = 'ARCHIVED' WHERE id = $1`, id)
	if got := pgFoundIDs(t, e, model.SearchQuery{Text: "tigerwood"}); len(got) != 0 {
		t.Errorf("an archived product is found: %v", got)
	}
	pgExec(t, pool, `UPDATE products SET status = 'ACTIVE' WHERE id = $1`, id)
	pgExec(t, pool, `DELETE FROM products WHERE id = $1`, id)

	var docs, active int
	if err := pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM search_docs), (SELECT count(*) FROM products WHERE status = 'ACTIVE')`).Scan(&docs, &active); err != nil {
		t.Fatal(err)
	}
	if docs != active {
		t.Errorf("search_docs has %d rows; products has %d active", docs, active)
	}
	var drift int
	if err := pool.QueryRow(context.Background(), `
		SELECT count(*) FROM products p FULL JOIN search_docs d ON d.product_id = p.id AND p.status = 'ACTIVE'
		 WHERE (p.status = 'ACTIVE' OR d.product_id IS NOT NULL)
		   AND (d.product_id IS NULL OR p.id IS NULL OR d.price_cents <> p.price_cents OR d.search_vector <> p.search_vector
		        OR d.popularity <> p.popularity OR d.category_id <> p.category_id
		        OR d.attr_set <> (SELECT s.id FROM search_attr_sets s WHERE s.codes = search_attribute_codes(p.attributes))
		        OR NOT d.terms @> search_attribute_codes(p.attributes))`).Scan(&drift); err != nil {
		t.Fatal(err)
	}
	if drift != 0 {
		t.Errorf("%d products differ from their search_docs row", drift)
	}
	if err := pool.QueryRow(context.Background(), `
		SELECT count(*) FROM search_docs d FULL JOIN search_facets f USING (product_id)
		 WHERE (d.category_id, d.brand_id, d.price_cents, d.created_at, d.popularity, d.attr_set, d.rating, d.terms)
		       IS DISTINCT FROM
		       (f.category_id, f.brand_id, f.price_cents, f.created_at, f.popularity, f.attr_set, f.rating, f.terms)`).Scan(&drift); err != nil {
		t.Fatal(err)
	}
	if drift != 0 {
		t.Errorf("%d search_facets rows differ from their search_docs row", drift)
	}
}

func TestPostgresHighlights(t *testing.T) {
	e, pool := newSeededPostgres(t, 50)
	const id = "5d1c9f3a-8e2b-4c7d-b1a0-6f4e3d2c1b0a"
	pgExec(t, pool, `INSERT INTO products (id, sku, slug, name, description, category_id, price_cents, status)
		SELECT $1, 'XSS-1', 'xss-sofa', 'Plush <b>Velour</b> Sofa & Chaise',
		       'A velour sofa <script>alert(1)</script> that seats four. Velour wears well.', id, 100, 'ACTIVE'
		  FROM categories LIMIT 1`, id)
	res, err := e.Search(context.Background(), model.SearchQuery{Text: "velour", First: 1})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].ProductID != id {
		t.Fatalf("velour: %+v, %v", res, err)
	}
	got := map[string][]string{}
	for _, h := range res.Hits[0].Highlights {
		got[h.Field] = h.Fragments
	}
	if want := []string{"Plush &lt;b&gt;<em>Velour</em>&lt;/b&gt; Sofa &amp; Chaise"}; !slices.Equal(got["name"], want) {
		t.Errorf("name highlight %q; want %q", got["name"], want)
	}
	desc := strings.Join(got["description"], " … ")
	// Fragments drop markup (ts_headline skips tags); what is left is escaped.
	if !strings.Contains(desc, "<em>velour</em>") || strings.Contains(desc, "<script") || strings.Count(desc, "<") != 2*strings.Count(desc, "<em>") {
		t.Errorf("description highlight %q; want the matches in <em> and no other markup", desc)
	}
	// Browsing has nothing to highlight.
	res, err = e.Search(context.Background(), model.SearchQuery{First: 3})
	if err != nil || len(res.Hits) == 0 || len(res.Hits[0].Highlights) != 0 {
		t.Errorf("browse hits %+v, %v; want no highlights", res, err)
	}
}

func TestPostgresOddText(t *testing.T) {
	e, _ := newSeededPostgres(t, 100)
	ctx := context.Background()
	all, err := e.Search(ctx, model.SearchQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		text  string
		total int
	}{
		{"!!! ???", all.Total}, // no words: browse
		{"the of and", 0},      // stop words only: nothing
		{"zzzzqqq", 0},         // unknown, nothing near
	} {
		res, err := e.Search(ctx, model.SearchQuery{Text: c.text})
		if err != nil || res.Total != c.total {
			t.Errorf("Search(%q): total %v, %v; want %d", c.text, res, err, c.total)
		}
	}
	for _, prefix := range []string{"100%", `a_b\`, "(sofa", "[", "'"} {
		if _, err := e.Suggest(ctx, prefix, 5); err != nil {
			t.Errorf("Suggest(%q): %v", prefix, err)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b  string
		limit int
		want  int
	}{
		{"sofa", "sofa", 1, 0}, {"sofo", "sofa", 1, 1}, {"tabel", "table", 1, 1}, {"lanp", "lamp", 1, 1},
		{"sofa", "sofas", 1, 1}, {"chandelir", "chandelier", 2, 1}, {"walnut", "wlanut", 2, 1},
		{"carpet", "carver", 2, 2}, {"sofa", "table", 1, 2}, {"ab", "ba", 1, 1}, {"étagère", "etagere", 2, 2},
	} {
		if got := editDistance(c.a, c.b, c.limit); got != c.want {
			t.Errorf("editDistance(%q, %q, %d) = %d; want %d", c.a, c.b, c.limit, got, c.want)
		}
	}
}

func TestCorrections(t *testing.T) {
	vocab := []string{"sofa", "soft", "solo", "table", "tablet", "lamp"}
	for _, c := range []struct {
		word string
		want []string
	}{
		{"sofo", []string{"sofa", "soft", "solo"}}, // all one edit away
		{"tabel", []string{"table"}},               // tablet is two
		{"lanp", []string{"lamp"}},
		{"xy", nil}, // too short to correct
		{"zzzz", nil},
	} {
		if got := corrections(c.word, vocab); !slices.Equal(got, c.want) {
			t.Errorf("corrections(%q) = %v; want %v", c.word, got, c.want)
		}
	}
}

// A configuration may facet on an attribute key that the migration does not list: the
// engine adds it to search_facet_keys, which gives every product codes for its values.
func TestPostgresFacetKeysFollowConfig(t *testing.T) {
	pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := seed.Catalog(ctx, pool, seed.Options{Products: 300, Seed: 5}); err != nil {
		t.Fatalf("seed: %v", err)
	}
	cfg := search.DefaultConfig()
	cfg.AttributeKeys = append(cfg.AttributeKeys, search.AttributeKey{Key: "weight_kg", Label: "Weight (kg)"})
	cfg.AttributeFacets = len(cfg.AttributeKeys)
	e := New(pool, cfg, nil)
	res, err := e.Search(ctx, model.SearchQuery{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.Facets, func(f model.Facet) bool { return f.Key == "attr.weight_kg" })
	if i < 0 {
		t.Fatalf("facets %v: no attr.weight_kg", searchtest.FacetKeys(res.Facets))
	}
	want := pgTopValues(t, pool, "weight_kg", cfg.FacetValues)
	if got := res.Facets[i].Values; len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("weight_kg values %v; want %v", got, want)
	}
	filter := model.SearchFilter{Attributes: []model.AttributeFilter{{Key: "weight_kg", Values: []string{want[0].Value}}}}
	if res, err := e.Search(ctx, model.SearchQuery{Filter: filter}); err != nil || res.Total != want[0].Count {
		t.Errorf("weight_kg %s: %+v, %v; want %d products", want[0].Value, res, err, want[0].Count)
	}
}

// pgTopValues counts the values of an attribute key over active products by brute force:
// the values of its facet when nothing is filtered.
func pgTopValues(t *testing.T, pool *pgxpool.Pool, key string, limit int) []model.FacetValue {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT attributes ->> $1, count(*)::int FROM products
		 WHERE status = 'ACTIVE' AND attributes ? $1
		 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $2`, key, limit)
	if err != nil {
		t.Fatal(err)
	}
	values, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (model.FacetValue, error) {
		var v model.FacetValue
		err := row.Scan(&v.Value, &v.Count)
		v.Label = v.Value
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return values
}

func TestPostgresConformance(t *testing.T) {
	var controls *relevance.Controls
	searchtest.RunConformance(t, func(t *testing.T, pool *pgxpool.Pool, cfg search.Config) search.Engine {
		controls = relevance.NewControls(pool)
		return New(pool, cfg, controls)
	}, searchtest.Hooks{ControlsChanged: func(*testing.T) { controls.Invalidate() }})
}
