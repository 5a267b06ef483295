package cache_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/cache"
	"github.com/homegoods/storefront/cache/cachetest"

	"github.com/homegoods/storefront/graph/model"
)

// rankingStore is the method set both implementations share.
type rankingStore interface {
	cache.Rankings
	Bestsellers(ctx context.Context, categoryID string, n int) ([]model.Ranked, error)
	Trending(ctx context.Context, categoryID string, n int) ([]model.Ranked, error)
}

var rankingEvents atomic.Int64

// record applies sales at time at as a new event.
func record(ctx context.Context, r rankingStore, at time.Time, sales []model.Sale) error {
	id := fmt.Sprint(rankingEvents.Add(1))
	return r.Apply(ctx, []cache.SalesEvent{{ID: id, At: at, Sales: sales}})
}

var (
	_ rankingStore = (*cache.RedisRankings)(nil)
	_ rankingStore = (*cache.MemoryRankings)(nil)
)

type rankingBackend struct {
	name string
	open func(t *testing.T, cfg cache.RankingConfig) rankingStore
}

func rankingBackends() []rankingBackend {
	onRedis := func(client func(testing.TB) (redis.UniversalClient, string)) func(*testing.T, cache.RankingConfig) rankingStore {
		return func(t *testing.T, cfg cache.RankingConfig) rankingStore {
			rdb, prefix := client(t)
			return cache.NewRedisRankings(rdb, prefix, cfg)
		}
	}
	return []rankingBackend{
		{name: "memory", open: func(_ *testing.T, cfg cache.RankingConfig) rankingStore { return cache.NewMemoryRankings(cfg) }},
		{name: "redis", open: onRedis(cachetest.Client)},
		{name: "cluster", open: onRedis(cachetest.ClusterClient)},
	}
}

// rankingT0 is the start of the tests' sales.
var rankingT0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// rankingClock returns a fixed clock at rankingT0 and a function that moves it.
func rankingClock() (func() time.Time, func(time.Time)) {
	now := rankingT0
	return func() time.Time { return now }, func(t time.Time) { now = t }
}

func TestRankingsBestsellers(t *testing.T) {
	chairs := []string{"chairs", "furniture"}
	tables := []string{"tables", "furniture"}
	orders := [][]model.Sale{
		{{ProductID: "oak-chair", CategoryIDs: chairs, Units: 4}, {ProductID: "oak-table", CategoryIDs: tables, Units: 1}},
		{{ProductID: "pine-chair", CategoryIDs: chairs, Units: 2}},
		{{ProductID: "oak-chair", CategoryIDs: chairs, Units: 1}, {ProductID: "lamp", CategoryIDs: []string{"lighting"}, Units: 5}},
		{{ProductID: "ash-chair", CategoryIDs: chairs, Units: 2}},
	}
	tests := []struct {
		category string
		n        int
		want     []model.Ranked
	}{
		{cache.AllCategories, 10, []model.Ranked{{ProductID: "oak-chair", Score: 5}, {ProductID: "lamp", Score: 5}, {ProductID: "pine-chair", Score: 2}, {ProductID: "ash-chair", Score: 2}, {ProductID: "oak-table", Score: 1}}},
		{"furniture", 10, []model.Ranked{{ProductID: "oak-chair", Score: 5}, {ProductID: "pine-chair", Score: 2}, {ProductID: "ash-chair", Score: 2}, {ProductID: "oak-table", Score: 1}}},
		{"chairs", 2, []model.Ranked{{ProductID: "oak-chair", Score: 5}, {ProductID: "pine-chair", Score: 2}}},
		{"tables", 10, []model.Ranked{{ProductID: "oak-table", Score: 1}}},
		{"lighting", 10, []model.Ranked{{ProductID: "lamp", Score: 5}}},
		{"rugs", 10, nil},
		{"chairs", 0, nil},
	}
	for _, b := range rankingBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := b.open(t, cache.RankingConfig{})
			for i, o := range orders {
				if err := record(ctx, r, rankingT0.Add(time.Duration(i)*time.Hour), o); err != nil {
					t.Fatalf("Record order %d: %v", i, err)
				}
			}
			for _, tc := range tests {
				got, err := r.Bestsellers(ctx, tc.category, tc.n)
				if err != nil {
					t.Fatalf("Bestsellers(%q): %v", tc.category, err)
				}
				// Ties go to the greater product id, as in Redis's ZREVRANGE.
				rankingCompare(t, fmt.Sprintf("Bestsellers(%q, %d)", tc.category, tc.n), got, tc.want, 0)
			}
		})
	}
}

// TestRankingsTrendingHalfLife checks forward decay numerically: a unit sold one half-life
// ago counts 1/2, two half-lives ago 1/4, whatever the clock says now.
func TestRankingsTrendingHalfLife(t *testing.T) {
	const day = 24 * time.Hour
	for _, b := range rankingBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now, setNow := rankingClock()
			r := b.open(t, cache.RankingConfig{HalfLife: day, Now: now})
			sales := []struct {
				at   time.Time
				sale model.Sale
			}{
				{rankingT0.Add(-3 * day), model.Sale{ProductID: "old-hit", Units: 12}},
				{rankingT0.Add(-day), model.Sale{ProductID: "steady", Units: 3}},
				{rankingT0.Add(-2 * day), model.Sale{ProductID: "steady", Units: 2}},
				{rankingT0, model.Sale{ProductID: "new", Units: 2}},
			}
			for _, s := range sales {
				if err := record(ctx, r, s.at, []model.Sale{s.sale}); err != nil {
					t.Fatal(err)
				}
			}
			trending, err := r.Trending(ctx, cache.AllCategories, 10)
			if err != nil {
				t.Fatal(err)
			}
			// 3/2 + 2/4, 2, 12/8: the two recent units outweigh twelve three days old.
			want := []model.Ranked{{ProductID: "steady", Score: 2}, {ProductID: "new", Score: 2}, {ProductID: "old-hit", Score: 1.5}}
			rankingCompare(t, "Trending now", trending, want, 1e-9)
			best, err := r.Bestsellers(ctx, cache.AllCategories, 10)
			if err != nil {
				t.Fatal(err)
			}
			rankingCompare(t, "Bestsellers", best, []model.Ranked{{ProductID: "old-hit", Score: 12}, {ProductID: "steady", Score: 5}, {ProductID: "new", Score: 2}}, 0)

			setNow(rankingT0.Add(day))
			trending, err = r.Trending(ctx, cache.AllCategories, 10)
			if err != nil {
				t.Fatal(err)
			}
			rankingCompare(t, "Trending a half-life later", trending, []model.Ranked{{ProductID: "steady", Score: 1}, {ProductID: "new", Score: 1}, {ProductID: "old-hit", Score: 0.75}}, 1e-9)
		})
	}
}

// TestRankingsTrendingRescale records sales far enough apart that the trending set is
// rescaled to a new epoch, and checks that scores are the same as without a rescale and
// that sales too old to matter are dropped.
func TestRankingsTrendingRescale(t *testing.T) {
	const halfLife = time.Minute
	for _, b := range rankingBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now, setNow := rankingClock()
			r := b.open(t, cache.RankingConfig{HalfLife: halfLife, Now: now})
			record := func(at time.Duration, product string, units int) {
				t.Helper()
				sale := model.Sale{ProductID: product, CategoryIDs: []string{"lamps"}, Units: units}
				if err := record(ctx, r, rankingT0.Add(at), []model.Sale{sale}); err != nil {
					t.Fatal(err)
				}
			}
			record(0, "ancient", 4) // the epoch
			record(60*halfLife, "older", 2)
			record(65*halfLife, "recent", 1) // beyond 64 half-lives: rescale, "ancient" drops out
			setNow(rankingT0.Add(66 * halfLife))

			trending, err := r.Trending(ctx, "lamps", 10)
			if err != nil {
				t.Fatal(err)
			}
			rankingCompare(t, "Trending", trending, []model.Ranked{{ProductID: "recent", Score: 0.5}, {ProductID: "older", Score: 2.0 / 64}}, 1e-9)
			best, err := r.Bestsellers(ctx, "lamps", 10)
			if err != nil {
				t.Fatal(err)
			}
			rankingCompare(t, "Bestsellers", best, []model.Ranked{{ProductID: "ancient", Score: 4}, {ProductID: "older", Score: 2}, {ProductID: "recent", Score: 1}}, 0)
		})
	}
}

func TestRankingsRefuseBadSales(t *testing.T) {
	bad := []struct {
		name string
		sale model.Sale
	}{
		{"no units", model.Sale{ProductID: "p", Units: 0}},
		{"no product", model.Sale{Units: 1}},
	}
	for _, b := range rankingBackends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := b.open(t, cache.RankingConfig{})
			for _, tc := range bad {
				good := model.Sale{ProductID: "good", Units: 1}
				if err := record(ctx, r, rankingT0, []model.Sale{good, tc.sale}); err == nil {
					t.Errorf("%s: Apply = nil; want an error", tc.name)
				}
			}
			if got, err := r.Bestsellers(ctx, cache.AllCategories, 10); len(got) != 0 || err != nil {
				t.Errorf("Bestsellers after refused orders = %v, %v; want none", got, err)
			}
		})
	}
}

// TestRankingsImplementationsAgree records the same random orders, months of them with
// rescales, into every implementation and expects the same rankings and scores.
func TestRankingsImplementationsAgree(t *testing.T) {
	const halfLife = 2 * time.Hour
	now, setNow := rankingClock()
	cfg := cache.RankingConfig{HalfLife: halfLife, Now: now}
	backends := rankingBackends()
	stores := make([]rankingStore, len(backends))
	for i, b := range backends {
		stores[i] = b.open(t, cfg)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	categories := [][]string{{"chairs", "furniture"}, {"tables", "furniture"}, {"lamps"}, {"rugs"}}
	at := rankingT0
	for range 300 {
		at = at.Add(time.Duration(rng.Int64N(int64(3 * halfLife))))
		var order []model.Sale
		for range 1 + rng.IntN(4) {
			order = append(order, model.Sale{
				ProductID:   fmt.Sprintf("p%02d", rng.IntN(40)),
				CategoryIDs: categories[rng.IntN(len(categories))],
				Units:       1 + rng.IntN(5),
			})
		}
		for i, s := range stores {
			if err := record(context.Background(), s, at, order); err != nil {
				t.Fatalf("%s: Record: %v", backends[i].name, err)
			}
		}
	}
	setNow(at.Add(halfLife / 3))

	for _, category := range []string{cache.AllCategories, "furniture", "chairs", "lamps", "rugs"} {
		for _, kind := range []string{"Bestsellers", "Trending"} {
			var want []model.Ranked
			for i, s := range stores {
				get := s.Bestsellers
				if kind == "Trending" {
					get = s.Trending
				}
				got, err := get(context.Background(), category, 25)
				if err != nil {
					t.Fatalf("%s: %s(%q): %v", backends[i].name, kind, category, err)
				}
				if i == 0 {
					want = got
					continue
				}
				rankingCompare(t, fmt.Sprintf("%s %s(%q) against %s", backends[i].name, kind, category, backends[0].name), got, want, 1e-9)
			}
			if len(want) == 0 {
				t.Errorf("%s(%q) is empty; the orders should fill it", kind, category)
			}
		}
	}
}

// rankingCompare fails t unless got has want's products in want's order, with scores equal
// within the relative tolerance tol.
func rankingCompare(t *testing.T, what string, got, want []model.Ranked, tol float64) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].ProductID == want[i].ProductID &&
			math.Abs(got[i].Score-want[i].Score) <= tol*math.Abs(want[i].Score)
	}
	if !ok {
		t.Errorf("%s = %v; want %v", what, got, want)
	}
}

// TestRedisRankingsLoadScript records on a new server, which does not have the script yet:
// every category is counted once, neither skipped nor counted again when the script is sent.
func TestRedisRankingsLoadScript(t *testing.T) {
	ctx := context.Background()
	srv := cachetest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	r := cache.NewRedisRankings(rdb, "t:", cache.RankingConfig{})
	order := []model.Sale{{ProductID: "chair", CategoryIDs: []string{"chairs", "furniture"}, Units: 2}}
	for range 2 {
		if err := record(ctx, r, rankingT0, order); err != nil {
			t.Fatal(err)
		}
	}
	for _, category := range []string{cache.AllCategories, "chairs", "furniture"} {
		got, err := r.Bestsellers(ctx, category, 5)
		if err != nil {
			t.Fatal(err)
		}
		rankingCompare(t, fmt.Sprintf("Bestsellers(%q)", category), got, []model.Ranked{{ProductID: "chair", Score: 4}}, 0)
	}
}

// Each event counts once however often it is delivered, also when a batch is delivered
// again with events before and after it, and a cancellation takes back exactly what its
// order added, in bestsellers and in trending.
func TestRankingsApplyEachEventOnce(t *testing.T) {
	chairs := []string{"chairs", "furniture"}
	placed := func(id string, at time.Duration, product string, units int) cache.SalesEvent {
		return cache.SalesEvent{ID: id, At: rankingT0.Add(at), Sales: []model.Sale{{ProductID: product, CategoryIDs: chairs, Units: units}}}
	}
	cancelled := func(id string, order cache.SalesEvent) cache.SalesEvent {
		e := order
		e.ID = id
		e.Sales = []model.Sale{{ProductID: order.Sales[0].ProductID, CategoryIDs: chairs, Units: -order.Sales[0].Units}}
		return e
	}
	a, b, c := placed("1", 0, "oak", 3), placed("2", time.Hour, "ash", 2), placed("3", 2*time.Hour, "oak", 4)
	for _, be := range rankingBackends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now, _ := rankingClock()
			r := be.open(t, cache.RankingConfig{HalfLife: time.Hour, Now: now})
			for _, batch := range [][]cache.SalesEvent{{a, b}, {a, b, c}, {b}, {c, cancelled("4", c)}, {cancelled("4", c)}} {
				if err := r.Apply(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			best, err := r.Bestsellers(ctx, "furniture", 10)
			if err != nil {
				t.Fatal(err)
			}
			rankingCompare(t, "Bestsellers", best, []model.Ranked{{ProductID: "oak", Score: 3}, {ProductID: "ash", Score: 2}}, 0)
			trending, err := r.Trending(ctx, "chairs", 10)
			if err != nil {
				t.Fatal(err)
			}
			// As of rankingT0: oak's 3 units sold then, ash's 2 units an hour later (weight 2).
			rankingCompare(t, "Trending", trending, []model.Ranked{{ProductID: "ash", Score: 4}, {ProductID: "oak", Score: 3}}, 1e-9)
			if err := r.Apply(ctx, []cache.SalesEvent{cancelled("5", a), cancelled("6", b)}); err != nil {
				t.Fatal(err)
			}
			for _, get := range []func(context.Context, string, int) ([]model.Ranked, error){r.Bestsellers, r.Trending} {
				if got, err := get(ctx, cache.AllCategories, 10); len(got) != 0 || err != nil {
					t.Errorf("after every order was cancelled: %v, %v; want no products", got, err)
				}
			}
		})
	}
}

func TestRankingsRefuseEventsWithoutID(t *testing.T) {
	for _, be := range rankingBackends() {
		t.Run(be.name, func(t *testing.T) {
			r := be.open(t, cache.RankingConfig{})
			err := r.Apply(context.Background(), []cache.SalesEvent{{At: rankingT0, Sales: []model.Sale{{ProductID: "p", Units: 1}}}})
			if err == nil {
				t.Error("Apply of an event without id = nil; want an error")
			}
		})
	}
}

// Replace sets every ranking from a history, empties the rankings of categories without
// sales, and marks the rankings built; events applied after it add to it.
func TestRankingsReplace(t *testing.T) {
	for _, be := range rankingBackends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now, _ := rankingClock()
			r := be.open(t, cache.RankingConfig{HalfLife: time.Hour, Now: now})
			if built, err := r.Built(ctx); built || err != nil {
				t.Fatalf("Built before any Replace = %v, %v; want false", built, err)
			}
			if err := record(ctx, r, rankingT0, []model.Sale{{ProductID: "stale", CategoryIDs: []string{"rugs"}, Units: 9}}); err != nil {
				t.Fatal(err)
			}
			h := model.RankingHistory{Categories: []string{"chairs", "furniture", "rugs"}, Totals: []model.SalesTotal{
				{ProductID: "oak", CategoryIDs: []string{"furniture", "chairs"}, Units: 5, Recent: 1.5},
				{ProductID: "ash", CategoryIDs: []string{"furniture", "chairs"}, Units: 2, Recent: 2},
				{ProductID: "old", CategoryIDs: []string{"furniture", "chairs"}, Units: 1, Recent: 1e-9},
			}}
			if err := r.Replace(ctx, h, rankingT0); err != nil {
				t.Fatal(err)
			}
			if built, err := r.Built(ctx); !built || err != nil {
				t.Errorf("Built after Replace = %v, %v; want true", built, err)
			}
			if got, err := r.Bestsellers(ctx, "rugs", 10); len(got) != 0 || err != nil {
				t.Errorf("rugs after Replace = %v, %v; want empty", got, err)
			}
			best, _ := r.Bestsellers(ctx, "chairs", 10)
			rankingCompare(t, "Bestsellers", best, []model.Ranked{{ProductID: "oak", Score: 5}, {ProductID: "ash", Score: 2}, {ProductID: "old", Score: 1}}, 0)
			if err := record(ctx, r, rankingT0, []model.Sale{{ProductID: "oak", CategoryIDs: []string{"furniture", "chairs"}, Units: 1}}); err != nil {
				t.Fatal(err)
			}
			trending, _ := r.Trending(ctx, "furniture", 10)
			rankingCompare(t, "Trending", trending, []model.Ranked{{ProductID: "oak", Score: 2.5}, {ProductID: "ash", Score: 2}}, 1e-9)
		})
	}
}
