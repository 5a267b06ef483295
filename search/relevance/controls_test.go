package relevance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db/dbtest"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
)

// controlsEvent is an outbox row written for a change of the relevance controls.
type controlsEvent struct {
	aggregate, aggregateID, kind string
	version                      int64
}

// controlsEvents returns the outbox rows of pool in id order.
func controlsEvents(t *testing.T, pool *pgxpool.Pool) []controlsEvent {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT aggregate, aggregate_id, kind, version FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []controlsEvent
	for rows.Next() {
		var e controlsEvent
		if err := rows.Scan(&e.aggregate, &e.aggregateID, &e.kind, &e.version); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// checkEvents checks that the outbox gained n controls events since it held before, with
// versions that keep rising.
func checkEvents(t *testing.T, pool *pgxpool.Pool, before []controlsEvent, n int) []controlsEvent {
	t.Helper()
	after := controlsEvents(t, pool)
	if got := len(after) - len(before); got != n {
		t.Fatalf("the change wrote %d outbox rows; want %d", got, n)
	}
	last := int64(0)
	if len(before) > 0 {
		last = before[len(before)-1].version
	}
	for _, e := range after[len(before):] {
		if e.aggregate != "search" || e.aggregateID != "controls" || e.kind != "search.controls.updated" {
			t.Errorf("outbox row %+v; want search/controls/search.controls.updated", e)
		}
		if e.version <= last {
			t.Errorf("outbox version %d after %d; versions must rise", e.version, last)
		}
		last = e.version
	}
	return after
}

func wantBadInput(t *testing.T, what string, err error, argument string) {
	t.Helper()
	var e *model.Error
	if !errors.As(err, &e) || e.Code != model.CodeBadUserInput {
		t.Errorf("%s: error %v; want BAD_USER_INPUT", what, err)
		return
	}
	if argument != "" && e.Argument != argument {
		t.Errorf("%s: argument %q; want %q", what, e.Argument, argument)
	}
}

func TestSynonymRules(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.New(t)
	c := NewControls(pool)
	events := controlsEvents(t, pool)

	saved, err := c.PutSynonym(ctx, model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{" Sofa ", "COUCH", "Sofa-Bed!", "couch"}})
	if err != nil {
		t.Fatalf("PutSynonym: %v", err)
	}
	if want := []string{"sofa", "couch", "sofa bed"}; !slices.Equal(saved.Terms, want) || !model.IsUUID(saved.ID) {
		t.Errorf("saved rule %+v; want normalized, deduplicated terms %v and an id", saved, want)
	}
	events = checkEvents(t, pool, events, 1)

	oneWay, err := c.PutSynonym(ctx, model.SynonymRule{Kind: model.SynonymOneWay, Terms: []string{"loveseat"}, Synonyms: []string{"Sofa"}})
	if err != nil {
		t.Fatalf("PutSynonym one way: %v", err)
	}
	events = checkEvents(t, pool, events, 1)

	saved.Terms = []string{"sofa", "settee"}
	updated, err := c.PutSynonym(ctx, *saved)
	if err != nil || updated.ID != saved.ID || !slices.Equal(updated.Terms, []string{"sofa", "settee"}) {
		t.Fatalf("update: %+v, %v; want the same id with the new terms", updated, err)
	}
	events = checkEvents(t, pool, events, 1)

	list, err := c.Synonyms(ctx)
	if err != nil || len(list) != 2 || list[0].ID != saved.ID || list[1].ID != oneWay.ID {
		t.Fatalf("Synonyms: %v, %v; want the two rules, oldest first", list, err)
	}
	if got, want := SynonymLines(list), []string{"sofa, settee", "loveseat => loveseat, sofa"}; !slices.Equal(got, want) {
		t.Errorf("SynonymLines = %q; want %q", got, want)
	}

	_, err = c.PutSynonym(ctx, model.SynonymRule{ID: "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", Kind: model.SynonymEquivalent, Terms: []string{"a", "b"}})
	if model.ErrorCodeOf(err) != model.CodeNotFound {
		t.Errorf("update of an unknown rule: %v; want NOT_FOUND", err)
	}
	deleted, err := c.DeleteSynonym(ctx, oneWay.ID)
	if err != nil || !deleted {
		t.Errorf("DeleteSynonym: %v, %v; want true", deleted, err)
	}
	events = checkEvents(t, pool, events, 1)
	if deleted, err := c.DeleteSynonym(ctx, oneWay.ID); err != nil || deleted {
		t.Errorf("DeleteSynonym again: %v, %v; want false", deleted, err)
	}
	checkEvents(t, pool, events, 0)
}

func TestSynonymRulesRefuseBadInput(t *testing.T) {
	ctx := context.Background()
	c := NewControls(dbtest.New(t))
	tooMany := make([]string, MaxSynonymTerms+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("term%d", i)
	}
	for _, tc := range []struct {
		name     string
		rule     model.SynonymRule
		argument string
	}{
		{"no terms", model.SynonymRule{Kind: model.SynonymEquivalent}, "input.terms"},
		{"one equivalent term", model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{"sofa", "SOFA"}}, "input.terms"},
		{"empty term", model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{"sofa", "  "}}, "input.terms"},
		{"punctuation only", model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{"sofa", "=>,"}}, "input.terms"},
		{"too many terms", model.SynonymRule{Kind: model.SynonymEquivalent, Terms: tooMany}, "input.terms"},
		{"term over 100 characters", model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{"sofa", strings.Repeat("a", 101)}}, "input.terms"},
		{"equivalent with synonyms", model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{"a", "b"}, Synonyms: []string{"c"}}, "input.synonyms"},
		{"one way without synonyms", model.SynonymRule{Kind: model.SynonymOneWay, Terms: []string{"loveseat"}}, "input.synonyms"},
		{"too many synonyms", model.SynonymRule{Kind: model.SynonymOneWay, Terms: []string{"a"}, Synonyms: tooMany}, "input.synonyms"},
		{"unknown kind", model.SynonymRule{Kind: "SOMETIMES", Terms: []string{"a", "b"}}, "input.kind"},
		{"id that is not an id", model.SynonymRule{ID: "42", Kind: model.SynonymEquivalent, Terms: []string{"a", "b"}}, "input.id"},
	} {
		_, err := c.PutSynonym(ctx, tc.rule)
		wantBadInput(t, tc.name, err, tc.argument)
	}
	_, err := c.DeleteSynonym(ctx, "not-an-id")
	wantBadInput(t, "DeleteSynonym(not-an-id)", err, "id")
}

func TestWeights(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.New(t)
	c := NewControls(pool)
	if w, err := c.Weights(ctx); err != nil || w != (model.RelevanceWeights{Popularity: 1, Recency: 0.5}) {
		t.Errorf("default weights %+v, %v; want popularity 1, recency 0.5, margin 0", w, err)
	}
	events := controlsEvents(t, pool)
	want := model.RelevanceWeights{Popularity: 2.5, Recency: 0, Margin: 10}
	if got, err := c.SetWeights(ctx, want); err != nil || got != want {
		t.Fatalf("SetWeights: %+v, %v", got, err)
	}
	checkEvents(t, pool, events, 1)
	if got, err := c.Weights(ctx); err != nil || got != want {
		t.Errorf("Weights after SetWeights on the same instance: %+v, %v; want %+v at once", got, err, want)
	}
	for _, w := range []model.RelevanceWeights{{Popularity: -1}, {Recency: 10.5}, {Margin: math.NaN()}, {Popularity: math.Inf(1)}} {
		_, err := c.SetWeights(ctx, w)
		wantBadInput(t, fmt.Sprintf("SetWeights(%+v)", w), err, "")
	}
}

func TestQueryRules(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.New(t)
	c := NewControls(pool)
	events := controlsEvents(t, pool)
	pins := []string{"9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"}
	brand := "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b"
	rule := model.QueryRule{Query: "  Oak   TABLE ", PinnedProductIDs: pins,
		Boosts: []model.SearchBoost{{BrandID: brand, Factor: 2.5}, {CategoryID: pins[0], Factor: 0.5}}}
	saved, err := c.PutRule(ctx, rule)
	if err != nil {
		t.Fatalf("PutRule: %v", err)
	}
	if saved.Query != "oak table" || !slices.Equal(saved.PinnedProductIDs, pins) || len(saved.Boosts) != 2 ||
		saved.Boosts[0] != rule.Boosts[0] || saved.Boosts[1] != rule.Boosts[1] {
		t.Errorf("saved rule %+v; want query \"oak table\" with the pins in order and the boosts", saved)
	}
	events = checkEvents(t, pool, events, 1)

	got, err := c.Rule(ctx, "OAK table")
	if err != nil || got == nil || got.Query != "oak table" {
		t.Errorf("Rule(OAK table): %+v, %v; want the rule", got, err)
	}
	if got, err := c.Rule(ctx, "oak"); err != nil || got != nil {
		t.Errorf("Rule(oak): %+v, %v; want none", got, err)
	}

	// Replacing keeps one rule per query.
	if _, err := c.PutRule(ctx, model.QueryRule{Query: "oak table", PinnedProductIDs: pins[1:]}); err != nil {
		t.Fatal(err)
	}
	events = checkEvents(t, pool, events, 1)
	if _, err := c.PutRule(ctx, model.QueryRule{Query: "lamp", Boosts: []model.SearchBoost{{BrandID: brand, Factor: 100}}}); err != nil {
		t.Fatal(err)
	}
	events = checkEvents(t, pool, events, 1)
	rules, err := c.Rules(ctx)
	if err != nil || len(rules) != 2 || rules[0].Query != "lamp" || !slices.Equal(rules[1].PinnedProductIDs, pins[1:]) || len(rules[1].Boosts) != 0 {
		t.Errorf("Rules: %+v, %v; want lamp, then oak table with one pin and no boosts", rules, err)
	}

	// Another instance sees the change once its snapshot is older than its TTL.
	other := NewControls(pool)
	other.ttl = 50 * time.Millisecond
	if r, _ := other.Rule(ctx, "lamp"); r == nil {
		t.Fatal("another instance does not see the lamp rule")
	}
	if deleted, err := c.DeleteRule(ctx, " LAMP "); err != nil || !deleted {
		t.Fatalf("DeleteRule: %v, %v", deleted, err)
	}
	checkEvents(t, pool, events, 1)
	if r, _ := c.Rule(ctx, "lamp"); r != nil {
		t.Error("the instance that deleted the rule still serves it")
	}
	time.Sleep(60 * time.Millisecond)
	if r, _ := other.Rule(ctx, "lamp"); r != nil {
		t.Error("another instance still serves a deleted rule after its TTL")
	}
	if deleted, err := c.DeleteRule(ctx, "lamp"); err != nil || deleted {
		t.Errorf("DeleteRule again: %v, %v; want false", deleted, err)
	}
}

func TestQueryRulesRefuseBadInput(t *testing.T) {
	ctx := context.Background()
	c := NewControls(dbtest.New(t))
	id := "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
	manyPins := make([]string, MaxPins+1)
	for i := range manyPins {
		manyPins[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	for _, tc := range []struct {
		name     string
		rule     model.QueryRule
		argument string
	}{
		{"empty query", model.QueryRule{Query: "   ", PinnedProductIDs: []string{id}}, "input.query"},
		{"long query", model.QueryRule{Query: strings.Repeat("a", search.MaxTextLength+1)}, "input.query"},
		{"too many pins", model.QueryRule{Query: "sofa", PinnedProductIDs: manyPins}, "input.pinnedProductIds"},
		{"pin that is not an id", model.QueryRule{Query: "sofa", PinnedProductIDs: []string{"sofa"}}, "input.pinnedProductIds"},
		{"pinned twice", model.QueryRule{Query: "sofa", PinnedProductIDs: []string{id, id}}, "input.pinnedProductIds"},
		{"factor 0", model.QueryRule{Query: "sofa", Boosts: []model.SearchBoost{{BrandID: id}}}, "input.boosts"},
		{"factor above 100", model.QueryRule{Query: "sofa", Boosts: []model.SearchBoost{{BrandID: id, Factor: 100.5}}}, "input.boosts"},
		{"factor NaN", model.QueryRule{Query: "sofa", Boosts: []model.SearchBoost{{BrandID: id, Factor: math.NaN()}}}, "input.boosts"},
		{"boost of nothing", model.QueryRule{Query: "sofa", Boosts: []model.SearchBoost{{Factor: 2}}}, "input.boosts"},
		{"boost of both", model.QueryRule{Query: "sofa", Boosts: []model.SearchBoost{{BrandID: id, CategoryID: id, Factor: 2}}}, "input.boosts"},
		{"boost of a non-id", model.QueryRule{Query: "sofa", Boosts: []model.SearchBoost{{CategoryID: "sofas", Factor: 2}}}, "input.boosts"},
	} {
		_, err := c.PutRule(ctx, tc.rule)
		wantBadInput(t, tc.name, err, tc.argument)
	}
}

func TestInsights(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.New(t)
	c := NewControls(pool)
	record := func(text string, total, times int) {
		t.Helper()
		for range times {
			if err := c.RecordSearch(ctx, text, total); err != nil {
				t.Fatalf("RecordSearch(%q, %d): %v", text, total, err)
			}
		}
	}
	record("Oak table", 12, 3)
	record("  oak   TABLE", 12, 1) // the same query
	record("sofa", 40, 2)
	record("zebra rug", 0, 2)
	record("unicorn lamp", 0, 1)
	record("unicorn lamp", 3, 1) // found something later
	record("", 100, 5)           // browsing is not a query

	// Concurrent searches of one query all count.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.RecordSearch(ctx, "lamp", 0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	in, err := c.Insights(ctx, 3)
	if err != nil {
		t.Fatalf("Insights: %v", err)
	}
	stats := func(list []model.SearchQueryStat) string {
		var parts []string
		for _, s := range list {
			parts = append(parts, fmt.Sprintf("%s:%d", s.Query, s.Count))
			if time.Since(s.LastSeen) > time.Minute {
				t.Errorf("%s last seen %v; want just now", s.Query, s.LastSeen)
			}
		}
		return strings.Join(parts, " ")
	}
	if got, want := stats(in.TopQueries), "lamp:20 oak table:4 sofa:2"; got != want {
		t.Errorf("top queries %s; want %s", got, want)
	}
	if got, want := stats(in.ZeroResultQueries), "lamp:20 zebra rug:2 unicorn lamp:1"; got != want {
		t.Errorf("zero-result queries %s; want %s", got, want)
	}
	for _, limit := range []int{0, MaxInsights + 1} {
		_, err := c.Insights(ctx, limit)
		wantBadInput(t, fmt.Sprintf("Insights(%d)", limit), err, "first")
	}
	wantBadInput(t, "RecordSearch of a negative total", c.RecordSearch(ctx, "sofa", -1), "total")
	wantBadInput(t, "RecordSearch of a long query", c.RecordSearch(ctx, strings.Repeat("a", search.MaxTextLength+1), 1), "query")

	// Recording is one HOT update: no index of search_log covers what it changes.
	var indexes []string
	if err := pool.QueryRow(ctx, `SELECT array_agg(indexdef) FROM pg_indexes WHERE tablename = 'search_log'`).Scan(&indexes); err != nil {
		t.Fatal(err)
	}
	if len(indexes) != 1 || !strings.Contains(indexes[0], "(query)") {
		t.Errorf("search_log indexes %v; want only the primary key on query", indexes)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"  Oak   TABLE ": "oak table", "": "", "Sofa\tBed\n": "sofa bed", "ÉTAGÈRE": "étagère",
	} {
		if got := search.Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q; want %q", in, got, want)
		}
	}
}
