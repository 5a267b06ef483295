package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/store"
)

// oracleOrder is each sort written as a plain ORDER BY: the keyset walk must agree with it.
var oracleOrder = map[model.ProductSort]string{
	model.ProductSortPriceAsc:   "price_cents ASC, id ASC",
	model.ProductSortPriceDesc:  "price_cents DESC, id DESC",
	model.ProductSortNameAsc:    "name ASC, id ASC",
	model.ProductSortNameDesc:   "name DESC, id DESC",
	model.ProductSortNewest:     "created_at DESC, id DESC",
	model.ProductSortPopularity: "popularity DESC, id DESC",
}

// walk reads every page of a listing, forward or backward, and returns the ids in sort order.
func walk(t *testing.T, s *store.Store, f model.ProductFilter, sort model.ProductSort, size int, backward bool) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for range 10_000 {
		conn, err := s.ListProducts(context.Background(), f, sort, model.Page{Limit: size, Cursor: cursor, Backward: backward})
		if err != nil {
			t.Fatalf("list %s: %v", sort, err)
		}
		page := make([]string, len(conn.Edges))
		for i, e := range conn.Edges {
			page[i] = e.Node.ID
		}
		more := conn.PageInfo.HasNextPage
		if backward {
			ids = append(page, ids...)
			more = conn.PageInfo.HasPreviousPage
		} else {
			ids = append(ids, page...)
		}
		if !more {
			return ids
		}
		if backward {
			cursor = *conn.PageInfo.StartCursor
		} else {
			cursor = *conn.PageInfo.EndCursor
		}
	}
	t.Fatal("the walk did not end")
	return nil
}

func TestListProductsWalksEverySortBothWays(t *testing.T) {
	s, pool := newCatalog(t, 250)
	for sort, order := range oracleOrder {
		want := mustIDs(t, pool, `SELECT id::text FROM products ORDER BY `+order)
		for _, backward := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/backward=%v", sort, backward), func(t *testing.T) {
				got := walk(t, s, model.ProductFilter{}, sort, 7, backward)
				if !slices.Equal(got, want) {
					t.Fatalf("walk gave %d ids in another order than ORDER BY %s (%d ids)", len(got), order, len(want))
				}
			})
		}
	}
}

// Rows inserted while a client pages must not make it see a row twice or miss one that was
// there when it started.
func TestListProductsWhileInserting(t *testing.T) {
	s, pool := newCatalog(t, 200)
	ctx := context.Background()
	before := mustIDs(t, pool, `SELECT id::text FROM products`)
	category := anyCategory(t, pool)

	seen := map[string]int{}
	cursor := ""
	for page := 0; ; page++ {
		conn, err := s.ListProducts(ctx, model.ProductFilter{}, model.ProductSortPriceAsc, model.Page{Limit: 9, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range conn.Edges {
			seen[e.Node.ID]++
		}
		// New rows land all over the price order: behind, at and ahead of the cursor.
		for i := range 3 {
			_, err := s.CreateProduct(ctx, model.CreateProductInput{
				Sku: fmt.Sprintf("NEW-%d-%d", page, i), Slug: ptr(fmt.Sprintf("new-%d-%d", page, i)), Name: "New arrival",
				CategoryID: category, Price: model.Cents((page*7919 + i*104729) % 90000), Status: ptr(model.ProductStatusActive),
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !conn.PageInfo.HasNextPage {
			break
		}
		cursor = *conn.PageInfo.EndCursor
	}
	for _, id := range before {
		if seen[id] != 1 {
			t.Errorf("product %s seen %d times; want once", id, seen[id])
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("product %s seen %d times", id, n)
		}
	}
}

func TestListProductsFilters(t *testing.T) {
	s, pool := newCatalog(t, 400)
	ctx := context.Background()
	parent := mustIDs(t, pool, `SELECT id::text FROM categories c WHERE parent_id IS NULL AND EXISTS
	    (SELECT 1 FROM categories g WHERE array_length(g.path, 1) = 3 AND g.path[1] = c.id) LIMIT 1`)[0]
	brands := mustIDs(t, pool, `SELECT id::text FROM brands ORDER BY slug LIMIT 3`)
	attrs := map[string]any{}
	var material string
	if err := pool.QueryRow(ctx, `SELECT attributes->>'material' FROM products WHERE attributes ? 'material' LIMIT 1`).Scan(&material); err != nil {
		t.Fatal(err)
	}
	attrs["material"] = material

	cases := []struct {
		name   string
		filter model.ProductFilter
		where  string // the same filter as a plain SQL condition
		args   []any
	}{
		{"category and descendants", model.ProductFilter{CategoryID: &parent},
			`category_id IN (SELECT id FROM categories WHERE $1::uuid = ANY(path))`, []any{parent}},
		{"brands", model.ProductFilter{BrandIDs: brands}, `brand_id = ANY($1::uuid[])`, []any{brands}},
		{"price range", model.ProductFilter{MinPrice: ptr(model.Cents(5000)), MaxPrice: ptr(model.Cents(15000))},
			`price_cents BETWEEN 5000 AND 15000`, nil},
		{"status", model.ProductFilter{Status: []model.ProductStatus{model.ProductStatusDraft, model.ProductStatusArchived}},
			`status <> 'ACTIVE'`, nil},
		{"attributes", model.ProductFilter{Attributes: attrs}, `attributes->>'material' = $1`, []any{material}},
		{"everything at once", model.ProductFilter{CategoryID: &parent, MaxPrice: ptr(model.Cents(30000)),
			Status: []model.ProductStatus{model.ProductStatusActive}},
			`category_id IN (SELECT id FROM categories WHERE $1::uuid = ANY(path)) AND price_cents <= 30000 AND status = 'ACTIVE'`, []any{parent}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := mustIDs(t, pool, `SELECT id::text FROM products WHERE `+c.where+` ORDER BY price_cents, id`, c.args...)
			if len(want) == 0 {
				t.Fatal("the oracle matches no product: the case tests nothing")
			}
			got := walk(t, s, c.filter, model.ProductSortPriceAsc, 50, false)
			if !slices.Equal(got, want) {
				t.Errorf("got %d products; want %d", len(got), len(want))
			}
			n, err := s.CountProducts(ctx, c.filter)
			if err != nil || n != len(want) {
				t.Errorf("count: got %d, %v; want %d", n, err, len(want))
			}
		})
	}
}

func TestListProductsRefusesBadCursors(t *testing.T) {
	s, _ := newCatalog(t, 20)
	ctx := context.Background()
	conn, err := s.ListProducts(ctx, model.ProductFilter{}, model.ProductSortNameAsc, model.Page{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	nameCursor := *conn.PageInfo.EndCursor
	for _, c := range []struct {
		name   string
		cursor string
		sort   model.ProductSort
		arg    string
		back   bool
	}{
		{"not base64", "%%%", model.ProductSortNameAsc, "after", false},
		{"not json", "bm90IGpzb24", model.ProductSortNameAsc, "after", false},
		{"another sort", nameCursor, model.ProductSortPriceAsc, "after", false},
		{"backward", "bm90IGpzb24", model.ProductSortNameAsc, "before", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.ListProducts(ctx, model.ProductFilter{}, c.sort, model.Page{Limit: 5, Cursor: c.cursor, Backward: c.back})
			wantCode(t, err, model.CodeBadUserInput, c.arg)
		})
	}
}

func TestProductChangesBumpVersionAndWriteOutbox(t *testing.T) {
	s, pool := newCatalog(t, 10)
	ctx := context.Background()
	category := anyCategory(t, pool)

	p, err := s.CreateProduct(ctx, model.CreateProductInput{Sku: "OAK-1", Slug: ptr("oak-table"), Name: "Oak Table",
		CategoryID: category, Price: 19900, Status: ptr(model.ProductStatusActive), Attributes: map[string]any{"material": "oak"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 1 || p.Price.Amount != 19900 || p.Attributes["material"] != "oak" {
		t.Fatalf("created: got version %d, price %d, attributes %v", p.Version, p.Price.Amount, p.Attributes)
	}
	u, err := s.UpdateProduct(ctx, p.ID, model.UpdateProductInput{Price: ptr(model.Cents(17900)), ExpectedVersion: ptr(1)})
	if err != nil {
		t.Fatal(err)
	}
	if u.Version != 2 || u.Price.Amount != 17900 || u.Name != "Oak Table" {
		t.Fatalf("updated: got version %d, price %d, name %q; want 2, 17900, the old name", u.Version, u.Price.Amount, u.Name)
	}

	_, err = s.UpdateProduct(ctx, p.ID, model.UpdateProductInput{Price: ptr(model.Cents(1)), ExpectedVersion: ptr(1)})
	wantCode(t, err, model.CodeConflict, "input.expectedVersion")

	a, err := s.ArchiveProduct(ctx, p.ID)
	if err != nil || a.Status != model.ProductStatusArchived || a.Version != 3 {
		t.Fatalf("archive: got %v, %v; want ARCHIVED at version 3", a, err)
	}

	rows, err := pool.Query(ctx, `SELECT kind, version, payload->>'price_cents' FROM outbox WHERE aggregate_id = $1 ORDER BY id`, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var kind, price string
		var version int64
		if err := rows.Scan(&kind, &version, &price); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s@%d:%s", kind, version, price))
	}
	want := []string{"product.created@1:19900", "product.updated@2:17900", "product.archived@3:17900"}
	if !slices.Equal(got, want) {
		t.Errorf("outbox: got %v; want %v (the stale update wrote nothing)", got, want)
	}
}

func TestProductConstraintsChangeNothing(t *testing.T) {
	s, pool := newCatalog(t, 10)
	ctx := context.Background()
	category := anyCategory(t, pool)
	existing := mustIDs(t, pool, `SELECT sku FROM products LIMIT 1`)[0]
	products := mustCount(t, pool, `SELECT count(*) FROM products`)
	outbox := mustCount(t, pool, `SELECT count(*) FROM outbox`)

	for _, c := range []struct {
		name string
		in   model.CreateProductInput
		code model.ErrorCode
		arg  string
	}{
		{"duplicate sku", model.CreateProductInput{Sku: existing, Slug: ptr("x-1"), Name: "X", CategoryID: category, Price: 100}, model.CodeConflict, "input.sku"},
		{"unknown category", model.CreateProductInput{Sku: "X-2", Slug: ptr("x-2"), Name: "X", CategoryID: "00000000-0000-4000-8000-000000000000", Price: 100}, model.CodeBadUserInput, "input.categoryId"},
		{"negative price", model.CreateProductInput{Sku: "X-3", Slug: ptr("x-3"), Name: "X", CategoryID: category, Price: -1}, model.CodeBadUserInput, "input.price"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.in.Status == nil {
				c.in.Status = ptr(model.ProductStatusDraft)
			}
			_, err := s.CreateProduct(ctx, c.in)
			wantCode(t, err, c.code, c.arg)
		})
	}
	if n := mustCount(t, pool, `SELECT count(*) FROM products`); n != products {
		t.Errorf("products: got %d; want %d", n, products)
	}
	if n := mustCount(t, pool, `SELECT count(*) FROM outbox`); n != outbox {
		t.Errorf("outbox rows: got %d; want %d", n, outbox)
	}
}

func TestSearchVectorFollowsProductAndBrand(t *testing.T) {
	s, pool := newCatalog(t, 10)
	ctx := context.Background()
	id := mustIDs(t, pool, `SELECT id::text FROM products WHERE brand_id IS NOT NULL LIMIT 1`)[0]
	matches := func(q string) bool {
		return mustCount(t, pool, `SELECT count(*) FROM products WHERE id = $1 AND search_vector @@ plainto_tsquery('english', $2)`, id, q) == 1
	}
	if _, err := s.UpdateProduct(ctx, id, model.UpdateProductInput{Name: ptr("Zanzibar Lounger")}); err != nil {
		t.Fatal(err)
	}
	if !matches("zanzibar") {
		t.Error("renamed product: search vector does not match its new name")
	}
	brand := mustIDs(t, pool, `SELECT brand_id::text FROM products WHERE id = $1`, id)[0]
	if _, err := s.UpdateBrand(ctx, brand, model.UpdateBrandInput{Name: ptr("Quixotic Works")}); err != nil {
		t.Fatal(err)
	}
	if !matches("quixotic") {
		t.Error("renamed brand: its product's search vector does not match the new brand name")
	}
}

func TestInventoryConstraints(t *testing.T) {
	_, pool := newCatalog(t, 5)
	ctx := context.Background()
	for _, c := range []struct{ name, sql string }{
		{"negative quantity", `UPDATE inventory SET quantity = -1`},
		{"reserved above quantity", `UPDATE inventory SET reserved_quantity = quantity + 1`},
		{"negative reservation", `UPDATE inventory SET reserved_quantity = -1`},
	} {
		if _, err := pool.Exec(ctx, c.sql); err == nil {
			t.Errorf("%s: the database accepted it; want a check violation", c.name)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE inventory SET quantity = 10, reserved_quantity = 4`); err != nil {
		t.Fatal(err)
	}
	if n := mustCount(t, pool, `SELECT count(*) FROM inventory WHERE available_quantity <> 6`); n != 0 {
		t.Errorf("rows whose available quantity is not quantity - reserved: %d", n)
	}
}
