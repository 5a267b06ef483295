package cache

import (
	"fmt"
	"math"
	"time"

	"github.com/homegoods/storefront/graph/model"
)

// AllCategories names the ranking over every product, whatever its category.
const AllCategories = ""

// RankingConfig configures the trending rankings.
type RankingConfig struct {
	// HalfLife is how long until a sale counts half as much in trending (default 24 hours).
	HalfLife time.Duration
	// Now is the clock of trending scores (default time.Now); tests fix it.
	Now func() time.Time
	// Remember is how long an applied event is remembered, so that its redelivery is
	// skipped (default 48 hours: the change feed redelivers within seconds).
	Remember time.Duration
}

// SalesEvent is one change to the rankings, applied once whatever how often it is
// delivered: the sales of a placed order at the time it was placed, or the same sales with
// negative units when the order is cancelled or expires.
type SalesEvent struct {
	ID    string // the change feed's event id
	At    time.Time
	Sales []model.Sale
}

// DefaultHalfLife makes trending reflect about the last few days of sales.
const DefaultHalfLife = 24 * time.Hour

func (c RankingConfig) withDefaults() RankingConfig {
	if c.HalfLife <= 0 {
		c.HalfLife = DefaultHalfLife
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Remember <= 0 {
		c.Remember = 48 * time.Hour
	}
	return c
}

// Trending uses forward decay (Cormode et al., "Forward Decay", ICDE 2009): a sale at time t
// adds units * 2^((t - epoch) / halfLife) to its product's score, so old sales never need to be
// rewritten and no periodic job is needed; the ratio between two scores is what they would be
// with sales decayed to any common time. The weights grow with t, so once a sale lands more
// than rankingRescaleHalfLives after the epoch the whole set is multiplied down and the epoch
// moves to the sale's time; scores that fall below rankingTrendFloor then are dropped, as
// they stand for sales too old to matter.
const (
	rankingRescaleHalfLives = 64
	rankingTrendFloor       = 1e-6
)

// rankingSeconds is t as fractional Unix seconds, the time unit of the decay arithmetic.
func rankingSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

// decayed converts a stored trending score to decayed units as of now.
func (c RankingConfig) decayed(score, epoch float64) float64 {
	return score * math.Exp2((epoch-rankingSeconds(c.Now()))/c.HalfLife.Seconds())
}

// rankingGroup is the work of one event on one ranking: the products to add, in order.
type rankingGroup struct {
	tag   string
	sales []rankingSale
}

type rankingSale struct {
	productID string
	units     int
}

// rankingGroups checks an event and splits its sales by ranking, each category once per
// sale and AllCategories for every sale, in a fixed order so that both implementations do
// the same float arithmetic.
func rankingGroups(e SalesEvent) ([]rankingGroup, error) {
	if e.ID == "" {
		return nil, fmt.Errorf("apply sales: an event needs an id")
	}
	var groups []rankingGroup
	index := map[string]int{}
	for _, s := range e.Sales {
		if s.ProductID == "" || s.Units == 0 {
			return nil, fmt.Errorf("apply sales: sale of product %q has %d units; want a product and units other than 0", s.ProductID, s.Units)
		}
		seen := map[string]bool{}
		for _, c := range append([]string{AllCategories}, s.CategoryIDs...) {
			if seen[c] {
				continue
			}
			seen[c] = true
			i, ok := index[c]
			if !ok {
				i = len(groups)
				index[c] = i
				groups = append(groups, rankingGroup{tag: rankingTag(c)})
			}
			groups[i].sales = append(groups[i].sales, rankingSale{productID: s.ProductID, units: s.Units})
		}
	}
	return groups, nil
}

// rankingTag names a category's rankings. It is a Redis Cluster hash tag: the bestseller,
// trending and epoch keys of one category live in one slot, so that one script updates them.
func rankingTag(categoryID string) string {
	if categoryID == AllCategories {
		return "all"
	}
	return "c:" + categoryID
}

// rankingTotals groups the totals of a rebuild by ranking: every category of each path, and
// AllCategories. Products whose recent sales fall below rankingTrendFloor are left out of
// trending, as a rescale would drop them.
func rankingTotals(totals []model.SalesTotal) map[string]*rankingTotal {
	out := map[string]*rankingTotal{}
	for _, t := range totals {
		seen := map[string]bool{}
		for _, c := range append([]string{AllCategories}, t.CategoryIDs...) {
			if seen[c] {
				continue
			}
			seen[c] = true
			g := out[rankingTag(c)]
			if g == nil {
				g = &rankingTotal{best: map[string]float64{}, trend: map[string]float64{}}
				out[rankingTag(c)] = g
			}
			g.best[t.ProductID] += float64(t.Units)
			g.trend[t.ProductID] += t.Recent
		}
	}
	for _, g := range out {
		for id, v := range g.best {
			if v <= 0 {
				delete(g.best, id)
			}
		}
		for id, v := range g.trend {
			if v < rankingTrendFloor {
				delete(g.trend, id)
			}
		}
	}
	return out
}

// rankingTotal is one ranking's scores after a rebuild.
type rankingTotal struct {
	best, trend map[string]float64
}
