package cache

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/homegoods/storefront/graph/model"
)

// MemoryRankings keeps the rankings in process memory: the embedded default without Redis,
// for a single server instance. It does the same arithmetic as RedisRankings, so both rank
// and score alike.
type MemoryRankings struct {
	cfg RankingConfig

	mu    sync.Mutex
	sets  map[string]*rankingSet
	seen  map[string]time.Time // applied events, until they are forgotten
	order []string             // the ids of seen, oldest first
	built bool
}

// rankingSet is one category's rankings.
type rankingSet struct {
	best, trend rankingScores
	epoch       float64
}

// rankingScores is a sorted set: scores by product, and their order, computed when a
// ranking is read after a change. Reads far outnumber orders, so each order pays for at
// most one sort per category.
type rankingScores struct {
	score  map[string]float64
	sorted []model.Ranked // nil when stale
}

// NewMemoryRankings returns empty in-process rankings.
func NewMemoryRankings(cfg RankingConfig) *MemoryRankings {
	return &MemoryRankings{cfg: cfg.withDefaults(), sets: map[string]*rankingSet{}, seen: map[string]time.Time{}}
}

// Apply applies each event to every ranking its sales belong to, each event once.
func (r *MemoryRankings) Apply(_ context.Context, events []SalesEvent) error {
	groups := make([][]rankingGroup, len(events))
	for i, e := range events {
		var err error
		if groups[i], err = rankingGroups(e); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Now()
	r.forget(now.Add(-r.cfg.Remember))
	for i, e := range events {
		if _, ok := r.seen[e.ID]; ok {
			continue
		}
		r.seen[e.ID] = now
		r.order = append(r.order, e.ID)
		for _, g := range groups[i] {
			r.record(g, rankingSeconds(e.At))
		}
	}
	return nil
}

// forget drops the events applied before cutoff. The caller holds r.mu.
func (r *MemoryRankings) forget(cutoff time.Time) {
	n := 0
	for n < len(r.order) && r.seen[r.order[n]].Before(cutoff) {
		delete(r.seen, r.order[n])
		n++
	}
	r.order = r.order[n:]
}

// Replace sets the rankings to what h says as of now and marks them built.
func (r *MemoryRankings) Replace(_ context.Context, h model.RankingHistory, now time.Time) error {
	sets := map[string]*rankingSet{}
	for tag, g := range rankingTotals(h.Totals) {
		sets[tag] = &rankingSet{best: rankingScores{score: g.best}, trend: rankingScores{score: g.trend}, epoch: rankingSeconds(now)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets, r.built = sets, true
	return nil
}

// Built reports whether the rankings were built (Replace): in memory, since the process
// started.
func (r *MemoryRankings) Built(context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.built, nil
}

// record is rankingRecord of ranking_redis.go, step by step. The caller holds r.mu.
func (r *MemoryRankings) record(g rankingGroup, t float64) {
	halfLife := r.cfg.HalfLife.Seconds()
	set, ok := r.sets[g.tag]
	switch {
	case !ok:
		set = &rankingSet{epoch: t}
		r.sets[g.tag] = set
	case (t-set.epoch)/halfLife > rankingRescaleHalfLives:
		set.trend.rescale(math.Exp2((set.epoch - t) / halfLife))
		set.epoch = t
	}
	weight := math.Exp2((t - set.epoch) / halfLife)
	for _, s := range g.sales {
		set.best.add(s.productID, float64(s.units), 0)
		set.trend.add(s.productID, float64(s.units)*weight, rankingTrendFloor)
	}
}

// Bestsellers returns the n products of categoryID (AllCategories for all) with the most
// units sold, best first; ties go to the greater product id.
func (r *MemoryRankings) Bestsellers(_ context.Context, categoryID string, n int) ([]model.Ranked, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set, ok := r.sets[rankingTag(categoryID)]
	if !ok || n <= 0 {
		return nil, nil
	}
	return set.best.top(n, func(score float64) float64 { return score }), nil
}

// Trending returns the n products of categoryID (AllCategories for all) with the highest
// decayed sales as of now, best first; ties go to the greater product id.
func (r *MemoryRankings) Trending(_ context.Context, categoryID string, n int) ([]model.Ranked, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set, ok := r.sets[rankingTag(categoryID)]
	if !ok || n <= 0 {
		return nil, nil
	}
	return set.trend.top(n, func(score float64) float64 { return r.cfg.decayed(score, set.epoch) }), nil
}

// add adds by to the score of productID; a score that ends below floor (or at 0 for a
// floor of 0) leaves the set, as in rankingApply.
func (s *rankingScores) add(productID string, by, floor float64) {
	if s.score == nil {
		s.score = map[string]float64{}
	}
	v := s.score[productID] + by
	if v < floor || v <= 0 {
		delete(s.score, productID)
	} else {
		s.score[productID] = v
	}
	s.sorted = nil
}

// rescale multiplies every score by factor and drops those below rankingTrendFloor.
func (s *rankingScores) rescale(factor float64) {
	for id, v := range s.score {
		if v *= factor; v < rankingTrendFloor {
			delete(s.score, id)
		} else {
			s.score[id] = v
		}
	}
	s.sorted = nil
}

// top returns the n best products with their scores mapped through score. The order is
// Redis's ZREVRANGE order: score descending, then product id descending.
func (s *rankingScores) top(n int, score func(float64) float64) []model.Ranked {
	if s.sorted == nil {
		s.sorted = make([]model.Ranked, 0, len(s.score))
		for id, v := range s.score {
			s.sorted = append(s.sorted, model.Ranked{ProductID: id, Score: v})
		}
		slices.SortFunc(s.sorted, func(a, b model.Ranked) int {
			return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(b.ProductID, a.ProductID))
		})
	}
	out := make([]model.Ranked, min(n, len(s.sorted)))
	for i := range out {
		out[i] = model.Ranked{ProductID: s.sorted[i].ProductID, Score: score(s.sorted[i].Score)}
	}
	return out
}
