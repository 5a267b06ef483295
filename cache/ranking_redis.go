package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/graph/model"
)

// RedisRankings keeps bestseller and trending rankings in Redis sorted sets, shared by every
// server instance. Each category has three keys under one hash tag (bestsellers, trending
// and the trending epoch), so it works on a Redis Cluster.
type RedisRankings struct {
	rdb    redis.UniversalClient
	prefix string
	cfg    RankingConfig
}

// NewRedisRankings returns rankings stored under prefix+"rank:".
func NewRedisRankings(rdb redis.UniversalClient, prefix string, cfg RankingConfig) *RedisRankings {
	return &RedisRankings{rdb: rdb, prefix: prefix + "rank:", cfg: cfg.withDefaults()}
}

// rankingRecord adds one order's sales to one category's rankings; see the constants of
// ranking.go for the decay. KEYS: bestsellers, trending, epoch. ARGV: sale time in Unix
// seconds, half-life in seconds, rescale threshold in half-lives, score floor, then product
// and units pairs.
var rankingRecord = redis.NewScript(`
local t = tonumber(ARGV[1])
local halfLife = tonumber(ARGV[2])
local epoch = tonumber(redis.call('GET', KEYS[3]))
if not epoch then
  epoch = t
  redis.call('SET', KEYS[3], ARGV[1])
elseif (t - epoch) / halfLife > tonumber(ARGV[3]) then
  redis.call('ZUNIONSTORE', KEYS[2], 1, KEYS[2], 'WEIGHTS', 2 ^ ((epoch - t) / halfLife))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
  epoch = t
  redis.call('SET', KEYS[3], ARGV[1])
end
local weight = 2 ^ ((t - epoch) / halfLife)
for i = 5, #ARGV, 2 do
  local units = tonumber(ARGV[i + 1])
  redis.call('ZINCRBY', KEYS[1], units, ARGV[i])
  redis.call('ZINCRBY', KEYS[2], units * weight, ARGV[i])
end
return 1
`)

// Record counts one order's sales at time at in every ranking they belong to. It is one
// round trip (one script per category, pipelined; one per cluster node on a cluster). It
// is not idempotent: a replayed order counts twice.
func (r *RedisRankings) Record(ctx context.Context, at time.Time, sales []model.Sale) error {
	groups, err := rankingGroups(sales)
	if err != nil || len(groups) == 0 {
		return err
	}
	t := strconv.FormatFloat(rankingSeconds(at), 'g', -1, 64)
	calls := make([]redisScriptCall, len(groups))
	for i, g := range groups {
		args := []any{t, r.cfg.HalfLife.Seconds(), rankingRescaleHalfLives, rankingTrendFloor}
		for _, s := range g.sales {
			args = append(args, s.productID, s.units)
		}
		calls[i] = redisScriptCall{keys: r.keys(g.tag), args: args}
	}
	if _, err := runScripts(ctx, r.rdb, rankingRecord, calls); err != nil {
		return fmt.Errorf("record sales: %w", err)
	}
	return nil
}

// Bestsellers returns the n products of categoryID (AllCategories for all) with the most
// units sold, best first; ties go to the greater product id.
func (r *RedisRankings) Bestsellers(ctx context.Context, categoryID string, n int) ([]model.Ranked, error) {
	if n <= 0 {
		return nil, nil
	}
	z, err := r.rdb.ZRevRangeWithScores(ctx, r.keys(rankingTag(categoryID))[0], 0, int64(n-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("bestsellers: %w", err)
	}
	return rankingFromZ(z, func(score float64) float64 { return score }), nil
}

// Trending returns the n products of categoryID (AllCategories for all) with the highest
// decayed sales as of now, best first; ties go to the greater product id.
func (r *RedisRankings) Trending(ctx context.Context, categoryID string, n int) ([]model.Ranked, error) {
	if n <= 0 {
		return nil, nil
	}
	keys := r.keys(rankingTag(categoryID))
	var epoch *redis.StringCmd
	var z *redis.ZSliceCmd
	// One transaction, so that a rescale cannot fall between reading the epoch and the scores.
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		epoch = p.Get(ctx, keys[2])
		z = p.ZRevRangeWithScores(ctx, keys[1], 0, int64(n-1))
		return nil
	})
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil // no sales yet: the epoch is set by the first one
	case err != nil:
		return nil, fmt.Errorf("trending: %w", err)
	}
	e, err := epoch.Float64()
	if err != nil {
		return nil, fmt.Errorf("trending epoch: %w", err)
	}
	return rankingFromZ(z.Val(), func(score float64) float64 { return r.cfg.decayed(score, e) }), nil
}

// keys returns the bestseller, trending and epoch keys of the ranking tag.
func (r *RedisRankings) keys(tag string) []string {
	base := r.prefix + "{" + tag + "}:"
	return []string{base + "best", base + "trend", base + "epoch"}
}

func rankingFromZ(z []redis.Z, score func(float64) float64) []model.Ranked {
	out := make([]model.Ranked, len(z))
	for i, m := range z {
		id, _ := m.Member.(string)
		out[i] = model.Ranked{ProductID: id, Score: score(m.Score)}
	}
	return out
}
