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

// rankingGroup is the work of one Record on one ranking: the products to add, in order.
type rankingGroup struct {
	tag   string
	sales []rankingSale
}

type rankingSale struct {
	productID string
	units     int
}

// rankingGroups checks sales and splits them by ranking, each category once per sale and
// AllCategories for every sale, in a fixed order so that both implementations do the same
// float arithmetic.
func rankingGroups(sales []model.Sale) ([]rankingGroup, error) {
	var groups []rankingGroup
	index := map[string]int{}
	for _, s := range sales {
		if s.ProductID == "" || s.Units <= 0 {
			return nil, fmt.Errorf("record sales: sale of product %q has %d units; want a product and units > 0", s.ProductID, s.Units)
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
