// Package feed is the change feed: it relays the committed changes that the outbox table logs
// to the consumers that keep copies of PostgreSQL (the cache, the search index, the
// rankings, the inventory alerts), each consumer at its own pace and exactly once in effect.
//
// # Writing events
//
// A change is logged by inserting one outbox row per changed entity in the transaction that
// makes the change, and in no other way:
//
//	INSERT INTO outbox (aggregate, aggregate_id, kind, version, payload) ...
//
// aggregate and aggregate_id name the entity ("product" and its id), kind what happened
// ("product.updated"), version the entity's row version after the change (it grows with
// every change of the entity), payload what consumers need beyond that. The store writes
// them in the same statement as the change where it can (store.withOutbox); relevance
// controls log through a trigger. A trigger queues every row for every active consumer, in
// its fast lane for the first 100 rows of a transaction and its bulk lane after that; a
// statement trigger NOTIFYs "outbox" so that relays wake at commit. The outbox id is the
// event's stable id.
//
// # Relaying
//
// Every server instance runs a relay per consumer (Relay, under the supervisor); the holder
// of the consumer's advisory lock leads and the others stand by. The leader reads a batch
// of its queue, hands it to the consumer's handler and deletes it from the queue in one
// transaction, so a leader that dies mid-batch leaves the whole batch to its successor:
// delivery is at least once, and each handler makes its effect exactly once (versioned
// writes, idempotency markers keyed by the event id, deletes). The fast and bulk lanes are
// drained side by side, each batch with the older events of its entities from the other
// lane, so an entity's events are handled in order while a single change overtakes a bulk
// backlog. Handlers must therefore take two batches at once.
//
// # Bookkeeping
//
// Maintain (one leader) retires consumers that no instance has run for ConsumerTimeout,
// dropping their queues, and prunes outbox rows that no queue holds once they are older
// than Retain. A consumer that is new or comes back is resynced by its leader before it
// relays (Consumer.Resync). Backlog reports each queue's length and oldest event.
package feed

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/graph/model"
)

// Handler applies a batch of events, in outbox order per entity. An error makes the relay
// hand it the same batch again; so does a relay that dies before committing the delivery.
type Handler func(ctx context.Context, events []model.OutboxEvent) error

// Consumer is one reader of the feed.
type Consumer struct {
	Name   string
	Handle Handler
	// Resync, when set, repairs the consumer's copy from PostgreSQL after it may have missed
	// events: when it is new, when it comes back after being retired, or when NeedsResync
	// says so. The leader runs it before it relays anything, and later between batches,
	// never beside its handler.
	Resync func(ctx context.Context) error
	// NeedsResync, when set, is asked when a leader starts and then at most once per Poll
	// whether the copy was lost (a Redis flushed, say) and needs a Resync.
	NeedsResync func(ctx context.Context) (bool, error)
	// Poll is how often the leader looks for events when no notification came (default
	// Options.Poll).
	Poll time.Duration
}

// Options tune a Feed; zero values take the defaults.
type Options struct {
	BatchSize     int           // events per fast-lane batch (default 500)
	BulkBatchSize int           // events per bulk-lane batch (default 250)
	Poll          time.Duration // backstop when no NOTIFY arrives (default 1s)
	// Heartbeat is how often a relay marks its consumer seen (default 30s).
	Heartbeat time.Duration
	// ConsumerTimeout is how long a consumer may go unseen before it is retired (default
	// 15m). Keep it longer than CACHE_TTL: the cache needs no resync because its entries
	// expire before its consumer retires.
	ConsumerTimeout time.Duration
	// Retain is how long delivered events stay in the outbox (default 10m); MaintainEvery
	// how often Maintain runs (default 1m).
	Retain, MaintainEvery time.Duration
	// BeforeCommit, when set, runs after a batch was handled and before its delivery
	// commits; an error rolls the delivery back. It is the fault hook of redelivery tests.
	BeforeCommit func(consumer string, events []model.OutboxEvent) error
	Log          *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.BulkBatchSize <= 0 {
		o.BulkBatchSize = 250
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 30 * time.Second
	}
	if o.ConsumerTimeout <= 0 {
		o.ConsumerTimeout = 15 * time.Minute
	}
	if o.Retain <= 0 {
		o.Retain = 10 * time.Minute
	}
	if o.MaintainEvery <= 0 {
		o.MaintainEvery = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Feed relays the outbox of one database.
type Feed struct {
	pool *pgxpool.Pool
	opts Options
	log  *slog.Logger
}

// New returns the feed of the database behind pool.
func New(pool *pgxpool.Pool, opts Options) *Feed {
	opts = opts.withDefaults()
	return &Feed{pool: pool, opts: opts, log: opts.Log}
}

// seenSQL registers a consumer or marks it seen by a running relay. A consumer that was
// retired is active again with a new epoch, so that its leader resyncs it; a new one starts
// at epoch 1, never synced.
const seenSQL = `
INSERT INTO outbox_consumers (name) VALUES ($1)
ON CONFLICT (name) DO UPDATE SET seen_at = now(), active = true,
    epoch = outbox_consumers.epoch + (NOT outbox_consumers.active)::int`

// Register makes consumer receive every event committed from now on. Relay registers its
// consumer itself; tests and commands that need the queue before a relay runs call it.
func (f *Feed) Register(ctx context.Context, consumer string) error {
	if _, err := f.pool.Exec(ctx, seenSQL, consumer); err != nil {
		return fmt.Errorf("register consumer %s: %w", consumer, err)
	}
	return nil
}

// Registered reports whether consumer is registered and active.
func (f *Feed) Registered(ctx context.Context, consumer string) (bool, error) {
	var ok bool
	err := f.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM outbox_consumers WHERE name = $1 AND active)`, consumer).Scan(&ok)
	return ok, err
}

// heartbeat marks consumer seen every Heartbeat until ctx ends.
func (f *Feed) heartbeat(ctx context.Context, consumer string) {
	t := time.NewTicker(f.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := f.Register(ctx, consumer); err != nil && ctx.Err() == nil {
				f.log.Warn("feed: heartbeat", "consumer", consumer, "err", err)
			}
		}
	}
}
