package resolvers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/resolvers"
)

const pageQuery = `query($n: Int) { products(first: $n) { edges { node {
    id sku name price { amount currency }
    category { id name } brand { id name } availability { inStock available }
} } } }`

// A page runs the same statements whatever its size: one for the page and one per edge.
func TestPageRunsFixedNumberOfStatements(t *testing.T) {
	// The loaders' window is what this test is about: give the 150 resolver goroutines of a
	// page ample time to reach it, even under -race with the other test packages running on
	// a loaded machine (100 ms was too short at a load of 15 on 2 cores).
	a := newAPI(t, 120, func(c *resolvers.Config) { c.LoaderWait = time.Second })
	counts := map[int]int64{}
	for _, n := range []int{1, 5, 20, 50} {
		a.statements.n.Store(0)
		data := a.ok("", pageQuery, map[string]any{"n": n})
		if got := len(dig(data, "products", "edges").([]any)); got != n {
			t.Fatalf("page of %d: got %d edges", n, got)
		}
		counts[n] = a.statements.n.Load()
	}
	for n, c := range counts {
		if c != 4 {
			t.Errorf("page of %d products ran %d statements; want 4 (page, categories, brands, availability)", n, c)
		}
	}
}

func TestProductLookups(t *testing.T) {
	a := newAPI(t, 30)
	id := a.text(`SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY sku LIMIT 1`)
	sku := a.text(`SELECT sku FROM products WHERE id = $1`, id)
	slug := a.text(`SELECT slug FROM products WHERE id = $1`, id)
	for _, args := range []string{`id: "` + gid("Product", id) + `"`, `sku: "` + sku + `"`, `slug: "` + slug + `"`} {
		data := a.ok("", `{ product(`+args+`) { id sku } }`, nil)
		if got := dig(data, "product", "sku"); got != sku {
			t.Errorf("product(%s): got sku %v; want %s", args, got, sku)
		}
	}
	for _, args := range []string{`sku: "` + sku + `", id: "` + gid("Product", id) + `"`, `sku: "` + sku + `", slug: "` + slug + `"`} {
		if code := a.do("", `{ product(`+args+`) { id } }`, nil).code(t); code != "BAD_USER_INPUT" {
			t.Errorf("product(%s): got %s; want BAD_USER_INPUT", args, code)
		}
	}
	if code := a.do("", `{ product(sku: "NOPE") { id } }`, nil).code(t); code != "NOT_FOUND" {
		t.Errorf("unknown sku: got %s; want NOT_FOUND", code)
	}

	node := a.ok("", `query($id: ID!) { node(id: $id) { __typename ... on Product { sku } } }`, map[string]any{"id": gid("Product", id)})
	if dig(node, "node", "sku") != sku {
		t.Errorf("node: got %v; want the product", node)
	}
	nodes := a.ok("", `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`,
		map[string]any{"ids": []string{gid("Product", id), gid("Product", "00000000-0000-4000-8000-000000000000")}})
	if dig(nodes, "nodes", 0, "id") != gid("Product", id) || dig(nodes, "nodes", 1) != nil {
		t.Errorf("nodes: got %v; want the product, then null", nodes)
	}
}

func TestDraftProductsAreForMerchandisersOnly(t *testing.T) {
	a := newAPI(t, 60)
	draft := a.text(`SELECT id::text FROM products WHERE status = 'DRAFT' LIMIT 1`)
	q := `query($id: ID!) { product(id: $id) { status } }`
	vars := map[string]any{"id": gid("Product", draft)}
	if code := a.do("", q, vars).code(t); code != "NOT_FOUND" {
		t.Errorf("guest reading a draft: got %s; want NOT_FOUND", code)
	}
	if got := dig(a.ok(a.merchandiser(), q, vars), "product", "status"); got != "DRAFT" {
		t.Errorf("merchandiser reading a draft: got %v", got)
	}
	listed := a.ok("", `{ products(first: 100) { totalCount edges { node { status } } } }`, nil)
	for _, e := range dig(listed, "products", "edges").([]any) {
		if s := dig(e, "node", "status"); s != "ACTIVE" {
			t.Fatalf("guest listing shows a %v product", s)
		}
	}
	if got, want := dig(listed, "products", "totalCount"), float64(a.count(`SELECT count(*) FROM products WHERE status = 'ACTIVE'`)); got != want {
		t.Errorf("guest totalCount: got %v; want %v active products", got, want)
	}
	r := a.do("", `{ products(filter: {status: [DRAFT]}) { totalCount } }`, nil)
	if code := r.code(t); code != "FORBIDDEN" {
		t.Errorf("guest filtering drafts: got %s; want FORBIDDEN", code)
	}
}

func TestAuthorization(t *testing.T) {
	a := newAPI(t, 10)
	customer := a.token(model.RoleCustomer, "00000000-0000-4000-8000-000000000001")
	cases := []struct {
		name, query string
	}{
		{"cost", `{ products(first: 1) { edges { node { cost { amount } } } } }`},
		{"inventory", `{ products(first: 1) { edges { node { inventory { available } } } } }`},
		{"warehouses", `{ warehouses { code } }`},
		{"mutation", `mutation { createBrand(input: {name: "Acme"}) { id } }`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code := a.do("", c.query, nil).code(t); code != "UNAUTHENTICATED" {
				t.Errorf("guest: got %s; want UNAUTHENTICATED", code)
			}
			if code := a.do(customer, c.query, nil).code(t); code != "FORBIDDEN" {
				t.Errorf("customer: got %s; want FORBIDDEN", code)
			}
			a.ok(a.merchandiser(), c.query, nil)
		})
	}
	expired, _ := a.auth.Token(model.RoleMerchandiser, "", -time.Hour)
	for name, tok := range map[string]string{"garbage": "not-a-jwt", "expired": expired, "forged": forged(t)} {
		r := a.do(tok, `{ __typename }`, nil)
		if r.status != 401 || r.code(t) != "UNAUTHENTICATED" {
			t.Errorf("%s token: got %d %+v; want 401 UNAUTHENTICATED", name, r.status, r.Errors)
		}
	}
}

// forged is a well-formed merchandiser token signed with another secret.
func forged(t *testing.T) string {
	tok, err := resolvers.NewAuth([]byte("another secret"), resolvers.AuthOptions{}).Token(model.RoleMerchandiser, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	a := newAPI(t, 10)
	m := a.merchandiser()
	category := gid("Category", a.text(`SELECT id::text FROM categories LIMIT 1`))
	sku := a.text(`SELECT sku FROM products LIMIT 1`)
	products, outbox := a.count(`SELECT count(*) FROM products`), a.count(`SELECT count(*) FROM outbox`)
	create := `mutation($in: CreateProductInput!) { createProduct(input: $in) { id } }`
	product := func(overrides map[string]any) map[string]any {
		in := map[string]any{"sku": "NEW-1", "name": "Walnut Desk", "categoryId": category, "price": "349.00"}
		for k, v := range overrides {
			in[k] = v
		}
		return map[string]any{"in": in}
	}
	cases := []struct {
		name  string
		query string
		vars  map[string]any
		code  string
		path  string
	}{
		{"first over 100", `{ products(first: 101) { totalCount } }`, nil, "BAD_USER_INPUT", "first"},
		{"negative first", `{ products(first: -1) { totalCount } }`, nil, "BAD_USER_INPUT", "first"},
		{"first and last", `{ products(first: 1, last: 1) { totalCount } }`, nil, "BAD_USER_INPUT", "last"},
		{"malformed cursor", `{ products(after: "garbage") { totalCount } }`, nil, "BAD_USER_INPUT", "after"},
		{"malformed id", `{ product(id: "Product:1") { id } }`, nil, "BAD_USER_INPUT", "id"},
		{"id of another type", `query($id: ID!) { product(id: $id) { id } }`, map[string]any{"id": category}, "BAD_USER_INPUT", "id"},
		{"price range upside down", `{ products(filter: {minPrice: "20", maxPrice: "10"}) { totalCount } }`, nil, "BAD_USER_INPUT", "filter.maxPrice"},
		{"nested attribute filter", `{ products(filter: {attributes: {size: {w: 1}}}) { totalCount } }`, nil, "BAD_USER_INPUT", "filter.attributes.size"},
		{"negative price", create, product(map[string]any{"price": "-5.00"}), "BAD_USER_INPUT", "input.price"},
		{"three decimals", create, product(map[string]any{"price": "5.001"}), "BAD_USER_INPUT", ""},
		{"number with three decimals", create, product(map[string]any{"price": 5.505}), "BAD_USER_INPUT", ""},
		{"unknown category", create, product(map[string]any{"categoryId": gid("Category", "00000000-0000-4000-8000-000000000000")}), "BAD_USER_INPUT", "input.categoryId"},
		{"malformed category", create, product(map[string]any{"categoryId": "sofas"}), "BAD_USER_INPUT", "input.categoryId"},
		{"duplicate sku", create, product(map[string]any{"sku": sku}), "CONFLICT", "input.sku"},
		{"bad slug", create, product(map[string]any{"slug": "Not A Slug"}), "BAD_USER_INPUT", "input.slug"},
		{"empty name", create, product(map[string]any{"name": "  "}), "BAD_USER_INPUT", "input.name"},
		{"nested attributes", create, product(map[string]any{"attributes": map[string]any{"size": []any{1, 2}}}), "BAD_USER_INPUT", "input.attributes.size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.do(m, c.query, c.vars)
			if code := r.code(t); code != c.code {
				t.Fatalf("got %s (%s); want %s", code, r.Errors[0].Message, c.code)
			}
			if got := strings.Join(r.Errors[0].Extensions.ArgumentPath, "."); c.path != "" && got != c.path {
				t.Errorf("argumentPath: got %q; want %q", got, c.path)
			}
		})
	}
	if n := a.count(`SELECT count(*) FROM products`); n != products {
		t.Errorf("products: got %d; want %d", n, products)
	}
	if n := a.count(`SELECT count(*) FROM outbox`); n != outbox {
		t.Errorf("outbox rows: got %d; want %d", n, outbox)
	}
}

func TestMerchandiserManagesTheCatalog(t *testing.T) {
	a := newAPI(t, 0)
	m := a.merchandiser()
	root := a.ok(m, `mutation { createCategory(input: {name: "Garden Rooms"}) { id slug depth } }`, nil)
	rootID := dig(root, "createCategory", "id").(string)
	child := a.ok(m, `mutation($p: ID!) { createCategory(input: {name: "Summer Houses", parentId: $p}) { id slug depth parent { slug } ancestors { slug } } }`,
		map[string]any{"p": rootID})
	if dig(child, "createCategory", "depth") != 1.0 || dig(child, "createCategory", "ancestors", 0, "slug") != "garden-rooms" {
		t.Fatalf("child category: got %v", child)
	}
	childID := dig(child, "createCategory", "id").(string)
	brand := a.ok(m, `mutation { createBrand(input: {name: "Hartwell & Co"}) { id slug } }`, nil)
	if dig(brand, "createBrand", "slug") != "hartwell-co" {
		t.Errorf("derived brand slug: got %v", dig(brand, "createBrand", "slug"))
	}

	created := a.ok(m, `mutation($in: CreateProductInput!) { createProduct(input: $in) { id slug status version price { amount } } }`,
		map[string]any{"in": map[string]any{"sku": "HW-100", "name": "Oak Dining Table", "categoryId": childID,
			"brandId": dig(brand, "createBrand", "id"), "price": "899.5", "cost": "400", "status": "ACTIVE",
			"attributes": map[string]any{"material": "oak", "seats": 6, "extendable": true}}})
	p := dig(created, "createProduct").(map[string]any)
	if p["slug"] != "oak-dining-table-hw-100" || p["version"] != 1.0 || dig(p, "price", "amount") != "899.50" {
		t.Fatalf("created product: got %v", p)
	}
	updated := a.ok(m, `mutation($id: ID!) { updateProduct(id: $id, input: {price: "849.00", expectedVersion: 1}) { name version price { amount } } }`,
		map[string]any{"id": p["id"]})
	if dig(updated, "updateProduct", "version") != 2.0 || dig(updated, "updateProduct", "name") != "Oak Dining Table" {
		t.Errorf("partial update: got %v", updated)
	}
	stale := a.do(m, `mutation($id: ID!) { updateProduct(id: $id, input: {price: "1.00", expectedVersion: 1}) { version } }`, map[string]any{"id": p["id"]})
	if code := stale.code(t); code != "CONFLICT" {
		t.Errorf("stale update: got %s; want CONFLICT", code)
	}

	q := `query($c: ID!) { products(filter: {categoryId: $c, attributes: {material: "oak", seats: 6}}) { totalCount edges { node {
	    sku brand { name } category { slug } attributeList { key kind text } } } } }`
	found := a.ok("", q, map[string]any{"c": rootID})
	if dig(found, "products", "totalCount") != 1.0 || dig(found, "products", "edges", 0, "node", "brand", "name") != "Hartwell & Co" {
		t.Fatalf("filter by parent category and attributes: got %v", found)
	}
	attrs := fmt.Sprint(dig(found, "products", "edges", 0, "node", "attributeList"))
	if !contains(attrs, "key:extendable kind:BOOLEAN text:true") || !contains(attrs, "key:seats kind:NUMBER text:6") {
		t.Errorf("attributeList: got %s", attrs)
	}
	counts := a.ok("", `{ category(slug: "garden-rooms") { productCount children { slug productCount } } }`, nil)
	if dig(counts, "category", "productCount") != 1.0 || dig(counts, "category", "children", 0, "productCount") != 1.0 {
		t.Errorf("product counts: got %v", counts)
	}

	a.ok(m, `mutation($id: ID!) { archiveProduct(id: $id) { status } }`, map[string]any{"id": p["id"]})
	if n := dig(a.ok("", q, map[string]any{"c": rootID}), "products", "totalCount"); n != 0.0 {
		t.Errorf("archived product still listed for guests: totalCount %v", n)
	}
	if n := a.count(`SELECT count(*) FROM outbox`); n != 6 {
		t.Errorf("outbox rows: got %d; want 6 (2 categories, 1 brand, create, update, archive)", n)
	}
}
