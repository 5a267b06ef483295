package search

import (
	"encoding/base64"
	"encoding/json"

	"github.com/homegoods/storefront/graph/model"
)

// Cursor is the position just after a hit: the value the sort ordered it by and its id, the
// tiebreaker. Both engines use it, so a cursor is "search_after" in either.
//
// Key is the score (RELEVANCE), the price in cents (PRICE_*), created_at in Unix
// microseconds (NEWEST) or the popularity (POPULARITY): all exact in a float64.
type Cursor struct {
	Sort model.SearchSort `json:"s"`
	Key  float64          `json:"k"`
	ID   string           `json:"i"`
}

// Encode makes the cursor opaque to clients.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(c) // a struct of plain fields always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads the After of q, refusing a cursor that is malformed or was made for
// another sort. An empty After gives ok=false.
func DecodeCursor(q model.SearchQuery) (c Cursor, ok bool, err error) {
	if q.After == "" {
		return Cursor{}, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(q.After)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || !model.IsUUID(c.ID) {
		return Cursor{}, false, BadInput("after", "the cursor is not one this search returned")
	}
	if c.Sort != q.Sort {
		return Cursor{}, false, BadInput("after", "the cursor belongs to a search sorted by %s", c.Sort)
	}
	return c, true, nil
}

// Prepare validates q against c (filling its defaults) and reads its cursor: nil on the
// first page. Engines call it first, since they may be used without the service.
func (c Config) Prepare(q *model.SearchQuery) (after *Cursor, err error) {
	if err := c.Validate(q); err != nil {
		return nil, err
	}
	cursor, ok, err := DecodeCursor(*q)
	if err != nil || !ok {
		return nil, err
	}
	return &cursor, nil
}
