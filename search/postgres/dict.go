package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/graph/model"
)

// pgSets remembers what the attribute sets of search_attr_sets hold: the search statement
// counts products by set, and Go spreads each set's count over its attribute values. A
// set's codes and a code's value never change once written (0005 only ever adds them), so
// what is remembered is never stale: a set the engine does not know yet is read once.
type pgSets struct {
	mu    sync.RWMutex
	sets  map[int32][]pgAttr
	count int // codes remembered, to bound the memory
}

// pgAttr is an attribute value: its key (without "attr.") and value.
type pgAttr struct{ key, value string }

// maxSetCodes bounds what pgSets remembers; past it, it starts over.
const maxSetCodes = 1 << 20

// pgSetCount is a count of products by attribute set: of the result when own is "", else
// of the products passing every filter but own's, the attribute key whose values they count.
type pgSetCount struct {
	set int32
	n   int
	own string
}

// attributes returns the values of each set, reading the sets it does not know.
func (d *pgSets) attributes(ctx context.Context, pool *pgxpool.Pool, counts []pgSetCount) (map[int32][]pgAttr, error) {
	out := make(map[int32][]pgAttr, len(counts))
	var missing []int32
	d.mu.RLock()
	for _, c := range counts {
		if attrs, ok := d.sets[c.set]; ok {
			out[c.set] = attrs
		} else if _, seen := out[c.set]; !seen {
			out[c.set] = nil
			missing = append(missing, c.set)
		}
	}
	d.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	read, err := readSets(ctx, pool, missing)
	if err != nil {
		return nil, err
	}
	d.remember(read)
	for id, attrs := range read {
		out[id] = attrs
	}
	return out, nil
}

// readSetsSQL reads sets with their values, in code order; a set without codes is one row
// without a value.
const readSetsSQL = `
SELECT s.id, t.facet, t.value
  FROM search_attr_sets s
  LEFT JOIN LATERAL unnest(s.codes) WITH ORDINALITY AS u(code, i) ON true
  LEFT JOIN search_terms t ON t.code = u.code
 WHERE s.id = ANY ($1::int4[])
 ORDER BY s.id, u.i`

// readSets reads the sets ids; an id it does not find (none should be missing: a set is
// written before the rows that use it) is left out, so that it is not remembered.
func readSets(ctx context.Context, pool *pgxpool.Pool, ids []int32) (map[int32][]pgAttr, error) {
	rows, err := pool.Query(ctx, readSetsSQL, ids)
	if err != nil {
		return nil, fmt.Errorf("read attribute sets: %w", err)
	}
	out := make(map[int32][]pgAttr, len(ids))
	var id int32
	var facet, value pgtype.Text
	_, err = pgx.ForEachRow(rows, []any{&id, &facet, &value}, func() error {
		attrs := out[id]
		if facet.Valid {
			attrs = append(attrs, pgAttr{strings.TrimPrefix(facet.String, model.AttributeFacetPrefix), value.String})
		} else if attrs == nil {
			attrs = []pgAttr{}
		}
		out[id] = attrs
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read attribute sets: %w", err)
	}
	return out, nil
}

func (d *pgSets) remember(sets map[int32][]pgAttr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sets == nil || d.count > maxSetCodes {
		d.sets, d.count = map[int32][]pgAttr{}, 0
	}
	for id, attrs := range sets {
		d.sets[id] = attrs
		d.count += len(attrs) + 1
	}
}
