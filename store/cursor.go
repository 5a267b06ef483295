package store

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/homegoods/storefront/graph/model"
)

// sortKey is one keyset ordering of products: a column and its direction, with the id as the
// unique tiebreaker in the same direction so that (column, id) row comparisons seek exactly.
type sortKey struct {
	column string
	desc   bool
	// value reads the sort column of a product as cursor text; parse turns it back into a
	// query argument.
	value func(*model.Product) string
	parse func(string) (any, error)
}

var sortKeys = map[model.ProductSort]sortKey{
	model.ProductSortPriceAsc:   {column: "price_cents", value: priceText, parse: parseInt},
	model.ProductSortPriceDesc:  {column: "price_cents", desc: true, value: priceText, parse: parseInt},
	model.ProductSortNameAsc:    {column: "name", value: nameText, parse: parseText},
	model.ProductSortNameDesc:   {column: "name", desc: true, value: nameText, parse: parseText},
	model.ProductSortNewest:     {column: "created_at", desc: true, value: createdText, parse: parseTime},
	model.ProductSortPopularity: {column: "popularity", desc: true, value: popularityText, parse: parseInt},
}

func priceText(p *model.Product) string      { return strconv.FormatInt(int64(p.Price.Amount), 10) }
func nameText(p *model.Product) string       { return p.Name }
func createdText(p *model.Product) string    { return p.CreatedAt.UTC().Format(time.RFC3339Nano) }
func popularityText(p *model.Product) string { return strconv.Itoa(p.Popularity) }

func parseInt(s string) (any, error)  { return strconv.ParseInt(s, 10, 64) }
func parseText(s string) (any, error) { return s, nil }
func parseTime(s string) (any, error) { return time.Parse(time.RFC3339Nano, s) }

// orderBy is the ORDER BY clause; walking backward reverses it (and the page is reversed
// again after reading).
func (k sortKey) orderBy(backward bool) string {
	dir := "ASC"
	if k.desc != backward {
		dir = "DESC"
	}
	return "p." + k.column + " " + dir + ", p.id " + dir
}

// seek is the condition for the rows strictly after the cursor in the walking direction.
func (k sortKey) seek(a *args, c cursor, backward bool) string {
	op := ">"
	if k.desc != backward {
		op = "<"
	}
	return "(p." + k.column + ", p.id) " + op + " (" + a.add(c.value) + ", " + a.add(c.id) + "::uuid)"
}

// cursor is a decoded position: the sort it belongs to, the sort column's value and the id.
type cursor struct {
	value any
	id    string
}

// cursorJSON is the opaque cursor's content before base64.
type cursorJSON struct {
	Sort  model.ProductSort `json:"s"`
	Value string            `json:"v"`
	ID    string            `json:"id"`
}

func encodeCursor(sort model.ProductSort, p *model.Product) string {
	b, _ := json.Marshal(cursorJSON{Sort: sort, Value: sortKeys[sort].value(p), ID: p.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

// cursorError is a malformed cursor; the caller names the argument it came in.
type cursorError struct{ msg string }

func (e *cursorError) withArgument(page model.Page) error {
	arg := "after"
	if page.Backward {
		arg = "before"
	}
	return model.InvalidArgument(arg, "%s", e.msg)
}

func decodeCursor(s string, sort model.ProductSort) (cursor, *cursorError) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursorJSON
	if err != nil || json.Unmarshal(b, &c) != nil || !model.IsUUID(c.ID) {
		return cursor{}, &cursorError{"malformed cursor"}
	}
	if c.Sort != sort {
		return cursor{}, &cursorError{"the cursor belongs to sort " + string(c.Sort) + ", not " + string(sort)}
	}
	v, err := sortKeys[sort].parse(c.Value)
	if err != nil {
		return cursor{}, &cursorError{"malformed cursor"}
	}
	return cursor{value: v, id: c.ID}, nil
}
