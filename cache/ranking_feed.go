package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
)

// RankingsConsumer names the rankings' consumer of the change feed.
const RankingsConsumer = "rankings"

// Rankings is what the rankings' feed consumer writes: RedisRankings or MemoryRankings.
type Rankings interface {
	Apply(ctx context.Context, events []SalesEvent) error
	Replace(ctx context.Context, h model.RankingHistory, now time.Time) error
	Built(ctx context.Context) (bool, error)
}

// RankingSource is what the rankings read from PostgreSQL: category paths, and the sales
// history they are rebuilt from (store.Store).
type RankingSource interface {
	CategoriesByIDs(ctx context.Context, ids []string) ([]*model.Category, error)
	// RankingHistory sums the orders as the rankings' consumer has been fed them: every
	// order whose "order.placed" event it has been handed (or that predates the feed),
	// less those whose "order.cancelled" event it has been handed; Recent decays by
	// halfLife to now.
	RankingHistory(ctx context.Context, consumer string, halfLife time.Duration, now time.Time) (model.RankingHistory, error)
}

// NewRankingsConsumer returns the consumer that keeps the bestseller and trending rankings
// from the orders: a placed order counts, a cancelled (or expired) one is taken back, each
// event exactly once (Rankings.Apply remembers event ids). When the rankings are lost (a
// Redis flushed or restarted empty, a new instance without Redis) or the consumer missed
// events, its leader rebuilds them from PostgreSQL's orders before relaying again.
func NewRankingsConsumer(r Rankings, src RankingSource, cfg RankingConfig, log *slog.Logger) feed.Consumer {
	cfg = cfg.withDefaults()
	h := rankingsHandler{rankings: r, src: src}
	return feed.Consumer{
		Name:   RankingsConsumer,
		Handle: h.handle,
		Resync: func(ctx context.Context) error {
			now := cfg.Now()
			history, err := src.RankingHistory(ctx, RankingsConsumer, cfg.HalfLife, now)
			if err != nil {
				return err
			}
			if err := r.Replace(ctx, history, now); err != nil {
				return err
			}
			log.Info("rankings rebuilt from the orders", "products", len(history.Totals))
			return nil
		},
		NeedsResync: func(ctx context.Context) (bool, error) {
			built, err := r.Built(ctx)
			return !built, err
		},
	}
}

type rankingsHandler struct {
	rankings Rankings
	src      RankingSource
}

// orderEvent is what the rankings read of an "order.placed" or "order.cancelled" event.
type orderEvent struct {
	PlacedAt time.Time `json:"placed_at"`
	Lines    []struct {
		ProductID  string `json:"product_id"`
		CategoryID string `json:"category_id"`
		Quantity   int    `json:"quantity"`
	} `json:"lines"`
}

// handle applies the batch's placed and cancelled orders in one Apply, at the time each
// order was placed, so that a cancellation takes back exactly what its order added.
func (h rankingsHandler) handle(ctx context.Context, events []model.OutboxEvent) error {
	var orders []orderEvent
	var picked []model.OutboxEvent
	var categories []string
	for _, e := range events {
		if e.Kind != "order.placed" && e.Kind != "order.cancelled" {
			continue
		}
		var o orderEvent
		if err := json.Unmarshal(e.Payload, &o); err != nil {
			return fmt.Errorf("order %s: %w", e.AggregateID, err)
		}
		for _, l := range o.Lines {
			categories = append(categories, l.CategoryID)
		}
		orders, picked = append(orders, o), append(picked, e)
	}
	if len(orders) == 0 {
		return nil
	}
	paths, err := h.paths(ctx, categories)
	if err != nil {
		return err
	}
	sales := make([]SalesEvent, len(orders))
	for i, o := range orders {
		sign := 1
		if picked[i].Kind == "order.cancelled" {
			sign = -1
		}
		sales[i] = SalesEvent{ID: fmt.Sprint(picked[i].ID), At: o.PlacedAt}
		for _, l := range o.Lines {
			sales[i].Sales = append(sales[i].Sales, model.Sale{ProductID: l.ProductID, CategoryIDs: paths[l.CategoryID], Units: sign * l.Quantity})
		}
	}
	return h.rankings.Apply(ctx, sales)
}

// paths returns the category path (the category and its ancestors) of each category id.
func (h rankingsHandler) paths(ctx context.Context, ids []string) (map[string][]string, error) {
	cats, err := h.src.CategoriesByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	paths := make(map[string][]string, len(cats))
	for _, c := range cats {
		paths[c.ID] = c.Path
	}
	return paths, nil
}
