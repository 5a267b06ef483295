package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/graph/model"
)

const categoryColumns = `id, parent_id, slug, name, path, version, created_at, updated_at`

func scanCategory(row pgx.CollectableRow) (*model.Category, error) {
	var c model.Category
	err := row.Scan(&c.ID, &c.ParentID, &c.Slug, &c.Name, &c.Path, &c.Version, &c.CreatedAt, &c.UpdatedAt)
	return &c, err
}

func queryCategories(ctx context.Context, q querier, sql string, args ...any) ([]*model.Category, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanCategory)
}

const categoriesByIDsSQL = `SELECT ` + categoryColumns + ` FROM categories WHERE id = ANY($1::uuid[])`

// CategoriesByIDs returns the categories with these ids, in no particular order.
func (s *Store) CategoriesByIDs(ctx context.Context, ids []string) ([]*model.Category, error) {
	cs, err := queryCategories(ctx, s.read(ctx), categoriesByIDsSQL, uuidArray(ids))
	if err != nil {
		return nil, fmt.Errorf("categories by ids: %w", err)
	}
	return cs, nil
}

const rootCategoriesSQL = `SELECT ` + categoryColumns + ` FROM categories WHERE parent_id IS NULL ORDER BY name, id`

// RootCategories returns the top-level categories by name.
func (s *Store) RootCategories(ctx context.Context) ([]*model.Category, error) {
	cs, err := queryCategories(ctx, s.read(ctx), rootCategoriesSQL)
	if err != nil {
		return nil, fmt.Errorf("root categories: %w", err)
	}
	return cs, nil
}

const categoryBySlugSQL = `SELECT ` + categoryColumns + ` FROM categories WHERE slug = $1`

// CategoryBySlug returns the category with slug, or NOT_FOUND.
func (s *Store) CategoryBySlug(ctx context.Context, slug string) (*model.Category, error) {
	cs, err := queryCategories(ctx, s.read(ctx), categoryBySlugSQL, slug)
	if err != nil {
		return nil, fmt.Errorf("category by slug: %w", err)
	}
	if len(cs) == 0 {
		return nil, model.NotFound("category")
	}
	return cs[0], nil
}

const childrenSQL = `SELECT ` + categoryColumns + ` FROM categories WHERE parent_id = ANY($1::uuid[]) ORDER BY name, id`

// ChildrenOf returns the children of each parent id, by name; a parent without children
// has no entry.
func (s *Store) ChildrenOf(ctx context.Context, parentIDs []string) (map[string][]*model.Category, error) {
	cs, err := queryCategories(ctx, s.read(ctx), childrenSQL, uuidArray(parentIDs))
	if err != nil {
		return nil, fmt.Errorf("children of categories: %w", err)
	}
	out := make(map[string][]*model.Category, len(parentIDs))
	for _, c := range cs {
		out[*c.ParentID] = append(out[*c.ParentID], c)
	}
	return out, nil
}

// productCountsSQL counts active products under each category, its descendants included.
const productCountsSQL = `
SELECT c.id::text, count(p.id)
FROM unnest($1::uuid[]) AS c(id)
JOIN categories d ON d.path @> ARRAY[c.id]
LEFT JOIN products p ON p.category_id = d.id AND p.status = 'ACTIVE'
GROUP BY c.id`

// ProductCounts returns the number of active products under each category id.
func (s *Store) ProductCounts(ctx context.Context, ids []string) (map[string]int, error) {
	rows, err := s.read(ctx).Query(ctx, productCountsSQL, uuidArray(ids))
	if err != nil {
		return nil, fmt.Errorf("product counts: %w", err)
	}
	out := make(map[string]int, len(ids))
	var id string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		out[id] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("product counts: %w", err)
	}
	return out, nil
}

var createCategorySQL = withOutbox("category", "category.created", `
    INSERT INTO categories (id, parent_id, slug, name, path)
    SELECT n.id, $1::uuid, $2, $3,
           coalesce((SELECT path FROM categories WHERE id = $1::uuid), '{}') || n.id
    FROM (SELECT gen_random_uuid() AS id) n
    RETURNING *`, categoryColumns)

// CreateCategory inserts a validated category under the parent with raw id ParentID (top
// level when nil).
func (s *Store) CreateCategory(ctx context.Context, in model.CreateCategoryInput) (*model.Category, error) {
	var out *model.Category
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockCategoryTree(ctx, tx); err != nil {
			return err
		}
		cs, err := queryCategories(ctx, tx, createCategorySQL, in.ParentID, *in.Slug, in.Name)
		if err == nil {
			out = cs[0]
		}
		return err
	})
	if err != nil {
		return nil, translate(err, "create category")
	}
	return out, nil
}

// lockCategoryTree serialises the transactions that write category paths (creates and
// moves) until tx ends. Without it, a category created under a subtree while the subtree
// moves keeps the path its parent had before the move, because the move's update does not
// see the new row; and two crossing moves can each miss rows the other moves. Each
// statement after the lock sees what the previous holder committed.
func lockCategoryTree(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, db.LockCategoryTree.Key())
	return err
}

var renameCategorySQL = withOutbox("category", "category.updated", `
    UPDATE categories SET slug = coalesce($2, slug), name = coalesce($3, name),
        version = version + 1, updated_at = now()
    WHERE id = $1 RETURNING *`, categoryColumns)

// moveSubtreeSQL rewrites the paths of a category and its descendants after a move: each
// path keeps its part from the moved category down and gets the new parent's path in front.
var moveSubtreeSQL = withOutbox("category", "category.moved", `
    UPDATE categories SET
        parent_id = CASE WHEN id = $1 THEN $2::uuid ELSE parent_id END,
        path = $3::uuid[] || path[array_position(path, $1::uuid):],
        version = version + 1, updated_at = now()
    WHERE path @> ARRAY[$1::uuid] RETURNING *`, categoryColumns)

// UpdateCategory renames and/or moves a category with its subtree, in one transaction. A
// move under the category itself or one of its descendants is refused.
func (s *Store) UpdateCategory(ctx context.Context, id string, in model.UpdateCategoryInput) (*model.Category, error) {
	var out *model.Category
	moves := in.ParentID != nil || (in.MakeRoot != nil && *in.MakeRoot)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The tree lock comes before any row lock: a create waiting for it holds none.
		if moves {
			if err := lockCategoryTree(ctx, tx); err != nil {
				return err
			}
		}
		cs, err := queryCategories(ctx, tx, renameCategorySQL, id, in.Slug, in.Name)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return model.NotFound("category")
		}
		out = cs[0]
		if !moves {
			return nil
		}
		out, err = s.move(ctx, tx, id, in.ParentID)
		return err
	})
	if err != nil {
		return nil, translate(err, "update category")
	}
	return out, nil
}

// move puts category id under parentID (top level when nil) and returns it as moved.
func (s *Store) move(ctx context.Context, tx pgx.Tx, id string, parentID *string) (*model.Category, error) {
	parentPath := []string{}
	if parentID != nil {
		err := tx.QueryRow(ctx, `SELECT path FROM categories WHERE id = $1 FOR UPDATE`, *parentID).Scan(&parentPath)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, model.InvalidArgument("input.parentId", "unknown parent category")
		}
		if err != nil {
			return nil, err
		}
		for _, ancestor := range parentPath {
			if ancestor == id {
				return nil, model.InvalidArgument("input.parentId", "a category cannot move under itself or its descendants")
			}
		}
	}
	cs, err := queryCategories(ctx, tx, moveSubtreeSQL, id, parentID, parentPath)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if c.ID == id {
			return c, nil
		}
	}
	return nil, model.NotFound("category")
}
