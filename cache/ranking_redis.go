package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/homegoods/storefront/graph/model"
)

// RedisRankings keeps bestseller and trending rankings in Redis sorted sets, shared by every
// server instance. Each category has four keys under one hash tag (bestsellers, trending,
// the trending epoch and the ids of the events applied), so it works on a Redis Cluster.
type RedisRankings struct {
	rdb    redis.UniversalClient
	prefix string
	cfg    RankingConfig
}

// NewRedisRankings returns rankings stored under prefix+"rank:".
func NewRedisRankings(rdb redis.UniversalClient, prefix string, cfg RankingConfig) *RedisRankings {
	return &RedisRankings{rdb: rdb, prefix: prefix + "rank:", cfg: cfg.withDefaults()}
}

// rankingApply applies one event's sales to one category's rankings, once: the event's id
// is remembered in the category's seen set, written in the same script as the scores, so a
// redelivered event changes nothing. See the constants of ranking.go for the decay.
// KEYS: bestsellers, trending, epoch, seen. ARGV: event id, sale time in Unix seconds,
// half-life in seconds, rescale threshold in half-lives, score floor, now in Unix seconds,
// how long to remember events in seconds, then product and units pairs. Units may be
// negative (a cancellation); a score that falls to nothing leaves its set.
var rankingApply = redis.NewScript(`
if redis.call('ZSCORE', KEYS[4], ARGV[1]) then
  return 0
end
local now = tonumber(ARGV[6])
redis.call('ZADD', KEYS[4], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[7]))
local t = tonumber(ARGV[2])
local halfLife = tonumber(ARGV[3])
local floor = tonumber(ARGV[5])
local epoch = tonumber(redis.call('GET', KEYS[3]))
if not epoch then
  epoch = t
  redis.call('SET', KEYS[3], ARGV[2])
elseif (t - epoch) / halfLife > tonumber(ARGV[4]) then
  redis.call('ZUNIONSTORE', KEYS[2], 1, KEYS[2], 'WEIGHTS', 2 ^ ((epoch - t) / halfLife))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[5])
  epoch = t
  redis.call('SET', KEYS[3], ARGV[2])
end
local weight = 2 ^ ((t - epoch) / halfLife)
for i = 8, #ARGV, 2 do
  local units = tonumber(ARGV[i + 1])
  if tonumber(redis.call('ZINCRBY', KEYS[1], units, ARGV[i])) <= 0 then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
  if tonumber(redis.call('ZINCRBY', KEYS[2], units * weight, ARGV[i])) < floor then
    redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
return 1
`)

// Apply applies each event to every ranking its sales belong to, each event once. It is one
// round trip (one script per event and category, pipelined; one per cluster node on a
// cluster).
func (r *RedisRankings) Apply(ctx context.Context, events []SalesEvent) error {
	now := strconv.FormatFloat(rankingSeconds(r.cfg.Now()), 'f', 3, 64)
	var calls []redisScriptCall
	for _, e := range events {
		groups, err := rankingGroups(e)
		if err != nil {
			return err
		}
		t := strconv.FormatFloat(rankingSeconds(e.At), 'g', -1, 64)
		for _, g := range groups {
			args := []any{e.ID, t, r.cfg.HalfLife.Seconds(), rankingRescaleHalfLives, rankingTrendFloor, now, r.cfg.Remember.Seconds()}
			for _, s := range g.sales {
				args = append(args, s.productID, s.units)
			}
			calls = append(calls, redisScriptCall{keys: r.keys(g.tag), args: args})
		}
	}
	if _, err := runScripts(ctx, r.rdb, rankingApply, calls); err != nil {
		return fmt.Errorf("apply sales: %w", err)
	}
	return nil
}

// Replace sets the rankings to what h says as of now, deleting the rankings of h's
// categories that have no sales, and marks the rankings built.
func (r *RedisRankings) Replace(ctx context.Context, h model.RankingHistory, now time.Time) error {
	totals := rankingTotals(h.Totals)
	tags := []string{rankingTag(AllCategories)}
	for _, c := range h.Categories {
		tags = append(tags, rankingTag(c))
	}
	epoch := strconv.FormatFloat(rankingSeconds(now), 'g', -1, 64)
	for chunk := range slices.Chunk(tags, 200) {
		pipe := r.rdb.Pipeline()
		for _, tag := range chunk {
			keys := r.keys(tag)
			pipe.Del(ctx, keys...)
			if g := totals[tag]; g != nil {
				zadd(ctx, pipe, keys[0], g.best)
				zadd(ctx, pipe, keys[1], g.trend)
				pipe.Set(ctx, keys[2], epoch, 0)
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("replace rankings: %w", err)
		}
	}
	if err := r.rdb.Set(ctx, r.prefix+"built", epoch, 0).Err(); err != nil {
		return fmt.Errorf("replace rankings: %w", err)
	}
	return nil
}

func zadd(ctx context.Context, pipe redis.Pipeliner, key string, scores map[string]float64) {
	if len(scores) == 0 {
		return
	}
	members := make([]redis.Z, 0, len(scores))
	for id, v := range scores {
		members = append(members, redis.Z{Score: v, Member: id})
	}
	pipe.ZAdd(ctx, key, members...)
}

// Built reports whether the rankings were built (Replace) since Redis last lost them.
func (r *RedisRankings) Built(ctx context.Context) (bool, error) {
	n, err := r.rdb.Exists(ctx, r.prefix+"built").Result()
	if err != nil {
		return false, fmt.Errorf("rankings built: %w", err)
	}
	return n == 1, nil
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

// keys returns the bestseller, trending, epoch and seen keys of the ranking tag.
func (r *RedisRankings) keys(tag string) []string {
	base := r.prefix + "{" + tag + "}:"
	return []string{base + "best", base + "trend", base + "epoch", base + "seen"}
}

func rankingFromZ(z []redis.Z, score func(float64) float64) []model.Ranked {
	out := make([]model.Ranked, len(z))
	for i, m := range z {
		id, _ := m.Member.(string)
		out[i] = model.Ranked{ProductID: id, Score: score(m.Score)}
	}
	return out
}
