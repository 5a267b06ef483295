package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/homegoods/storefront/graph/model"
)

func TestCategoryMoveRewritesSubtreePaths(t *testing.T) {
	s, pool := newCatalog(t, 0)
	ctx := context.Background()
	create := func(name string, parent *string) *model.Category {
		t.Helper()
		c, err := s.CreateCategory(ctx, model.CreateCategoryInput{Name: name, Slug: ptr(model.Slugify(name)), ParentID: parent})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return c
	}
	a := create("Alpha", nil)
	b := create("Beta", nil)
	c := create("Gamma", &a.ID)
	d := create("Delta", &c.ID)
	if !slices.Equal(d.Path, []string{a.ID, c.ID, d.ID}) {
		t.Fatalf("path of a new category: got %v; want root to itself", d.Path)
	}

	moved, err := s.UpdateCategory(ctx, a.ID, model.UpdateCategoryInput{ParentID: &b.ID})
	if err != nil {
		t.Fatal(err)
	}
	if *moved.ParentID != b.ID || !slices.Equal(moved.Path, []string{b.ID, a.ID}) {
		t.Fatalf("moved: got parent %v, path %v", *moved.ParentID, moved.Path)
	}
	got, err := s.CategoriesByIDs(ctx, []string{d.ID})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{b.ID, a.ID, c.ID, d.ID}; !slices.Equal(got[0].Path, want) {
		t.Errorf("descendant path: got %v; want %v", got[0].Path, want)
	}

	// Under its own descendant: refused, and nothing changes.
	_, err = s.UpdateCategory(ctx, b.ID, model.UpdateCategoryInput{ParentID: &d.ID, Name: ptr("Renamed")})
	wantCode(t, err, model.CodeBadUserInput, "input.parentId")
	if n := mustCount(t, pool, `SELECT count(*) FROM categories WHERE name = 'Renamed'`); n != 0 {
		t.Error("a refused move kept its rename; want the whole update rolled back")
	}

	root, err := s.UpdateCategory(ctx, c.ID, model.UpdateCategoryInput{MakeRoot: ptr(true)})
	if err != nil || root.ParentID != nil || !slices.Equal(root.Path, []string{c.ID}) {
		t.Fatalf("make root: got %+v, %v", root, err)
	}
	moves := mustCount(t, pool, `SELECT count(*) FROM outbox WHERE kind = 'category.moved'`)
	if moves != 3+2 { // a, c and d moved; then c and d
		t.Errorf("outbox category.moved rows: got %d; want 5", moves)
	}
}

func TestCategoryBatchLoads(t *testing.T) {
	s, pool := newCatalog(t, 300)
	ctx := context.Background()
	roots, err := s.RootCategories(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(roots))
	for i, r := range roots {
		ids[i] = r.ID
	}
	children, err := s.ChildrenOf(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := s.ProductCounts(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, id := range ids {
		want := mustIDs(t, pool, `SELECT id::text FROM categories WHERE parent_id = $1 ORDER BY name, id`, id)
		var got []string
		for _, c := range children[id] {
			got = append(got, c.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("children of %s: got %v; want %v", id, got, want)
		}
		wantCount := mustCount(t, pool, `SELECT count(*) FROM products p JOIN categories c ON c.id = p.category_id
		    WHERE c.path[1] = $1 AND p.status = 'ACTIVE'`, id)
		if counts[id] != wantCount {
			t.Errorf("product count of %s: got %d; want %d", id, counts[id], wantCount)
		}
		total += counts[id]
	}
	if want := mustCount(t, pool, `SELECT count(*) FROM products WHERE status = 'ACTIVE'`); total != want {
		t.Errorf("active products over all roots: got %d; want %d", total, want)
	}
}

func TestAvailabilityAndInventory(t *testing.T) {
	s, pool := newCatalog(t, 50)
	ctx := context.Background()
	ids := mustIDs(t, pool, `SELECT id::text FROM products ORDER BY sku LIMIT 20`)
	avail, err := s.Availability(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := s.Inventory(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		want := mustCount(t, pool, `SELECT coalesce(sum(available_quantity), 0) FROM inventory WHERE product_id = $1`, id)
		if a := avail[id]; a == nil || a.Available != want || a.InStock != (want > 0) {
			t.Errorf("availability of %s: got %+v; want %d", id, a, want)
		}
		sum := 0
		for i, l := range inv[id] {
			sum += l.Available
			if i > 0 && l.Warehouse.Priority < inv[id][i-1].Warehouse.Priority {
				t.Errorf("inventory of %s is not in warehouse priority order", id)
			}
		}
		if sum != want || len(inv[id]) != mustCount(t, pool, `SELECT count(*) FROM warehouses`) {
			t.Errorf("inventory of %s: got %d rows summing to %d; want a row per warehouse summing to %d", id, len(inv[id]), sum, want)
		}
	}
}

// Creates and moves racing each other leave every path equal to its parent's path and the
// category's own id: no category keeps the path its parent had before a move.
func TestConcurrentCategoryCreatesAndMovesStayConsistent(t *testing.T) {
	s, pool := newCatalog(t, 0)
	ctx := context.Background()
	var mu sync.Mutex
	var ids []string
	pick := func(rng *rand.Rand) string {
		mu.Lock()
		defer mu.Unlock()
		return ids[rng.IntN(len(ids))]
	}
	for i := range 4 {
		c, err := s.CreateCategory(ctx, model.CreateCategoryInput{Name: fmt.Sprint("Root ", i), Slug: ptr(fmt.Sprint("root-", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 40 {
				if rng.IntN(2) == 0 {
					parent := pick(rng)
					c, err := s.CreateCategory(ctx, model.CreateCategoryInput{Name: fmt.Sprintf("C %d %d", w, i), Slug: ptr(fmt.Sprintf("c-%d-%d", w, i)), ParentID: &parent})
					if err != nil {
						t.Errorf("create: %v", err)
						return
					}
					mu.Lock()
					ids = append(ids, c.ID)
					mu.Unlock()
					continue
				}
				in := model.UpdateCategoryInput{MakeRoot: ptr(true)}
				if rng.IntN(4) > 0 {
					parent := pick(rng)
					in = model.UpdateCategoryInput{ParentID: &parent}
				}
				if _, err := s.UpdateCategory(ctx, pick(rng), in); err != nil && model.ErrorCodeOf(err) != model.CodeBadUserInput {
					t.Errorf("move: %v", err) // under its own subtree is refused; anything else is a failure
					return
				}
			}
		})
	}
	wg.Wait()
	stale := mustIDs(t, pool, `SELECT c.name FROM categories c LEFT JOIN categories p ON p.id = c.parent_id
		WHERE c.path <> coalesce(p.path, '{}') || c.id`)
	if len(stale) > 0 {
		t.Errorf("%d of %d categories have a path that is not their parent's path and their id: %v", len(stale), len(ids), stale)
	}
}
