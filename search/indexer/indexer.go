// Package indexer keeps the Elasticsearch index in step with PostgreSQL: it is the change
// feed's "search" consumer, loads documents from PostgreSQL, rebuilds the index behind its
// alias and reconciles drift. PostgreSQL is the source of truth; the index is derived.
package indexer

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search/elastic"
	"github.com/homegoods/storefront/search/relevance"
)

// DefaultConsumer is the outbox consumer the indexer's relay drains.
const DefaultConsumer = "search"

// Options tune an Indexer; zero values take the defaults.
type Options struct {
	// Consumer is the name of the indexer's consumer of the change feed (default "search").
	Consumer string
	// ObserveLag, when set, is told the sync lag of every event applied: from the commit
	// of the change (the event's created_at) until its document was written.
	ObserveLag func(kind string, lag time.Duration)
	// OnVisible, when set, is called once the changes a batch wrote are searchable (the
	// indexer then refreshes the index itself rather than wait for its refresh interval)
	// and after a rebuild swapped the alias, such as to drop cached search results that a
	// search could have taken from the index meanwhile.
	OnVisible func()
	// LoadWorkers is how many bulk requests a rebuild keeps in flight (default 2).
	LoadWorkers int
	// SwapGrace is how long a rebuild waits after swapping the alias before it deletes
	// the old index, for searches that resolved the alias just before the swap (default 2s).
	SwapGrace time.Duration
	// Controls supply the synonyms an index is created with; nil means no synonyms.
	Controls *relevance.Controls
	Log      *slog.Logger
}

// Indexer keeps the Elasticsearch index in step with PostgreSQL: it applies outbox events
// (Handle, the relay's handler), rebuilds the index behind its alias (Reindex) and repairs
// drift (Reconcile). Documents are written with their product's row version as an external
// version, so a replayed or late write never overwrites newer data.
//
// Large changes: the relay hands Handle batches of its BatchSize events (500 by default),
// and Handle writes a batch as bulk requests of at most elastic.MaxBulkDocs documents and
// maxBulkBytes, two at a time. A repricing of 10,000 products is twenty such batches; the
// outbox is drained in commit order, so a change committed after it waits for them
// (about two seconds on a quiet 2-core machine), while searches keep the cluster's other
// threads.
type Indexer struct {
	es   *elastic.Engine
	pool *pgxpool.Pool
	opts Options
	log  *slog.Logger
	// synonyms wakes RunSynonymUpdates when the relevance controls changed.
	synonyms chan struct{}
	// refreshing is set while announceVisible refreshes; unrefreshed when writes came since
	// its refresh began.
	refreshing, unrefreshed atomic.Bool
}

// New returns the indexer writing es's alias from the catalog in pool.
func New(es *elastic.Engine, pool *pgxpool.Pool, opts Options) *Indexer {
	if opts.Consumer == "" {
		opts.Consumer = DefaultConsumer
	}
	if opts.LoadWorkers <= 0 {
		opts.LoadWorkers = 2
	}
	if opts.SwapGrace <= 0 {
		opts.SwapGrace = 2 * time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Indexer{es: es, pool: pool, opts: opts, log: log.With("component", "search-indexer", "index", es.Alias()),
		synonyms: make(chan struct{}, 1)}
}

// changes is what a batch of events asks the indexer to do.
type changes struct {
	products   []string // product ids whose documents to rewrite, in first-seen order
	categories []string // renamed or moved categories: rewrite their products
	brands     []string // renamed brands: rewrite their products
	controls   bool     // relevance controls changed: push the synonyms
}

func classify(events []model.OutboxEvent) changes {
	var c changes
	type key struct{ aggregate, id string }
	seen := map[key]bool{}
	add := func(list *[]string, ev model.OutboxEvent) {
		if k := (key{ev.Aggregate, ev.AggregateID}); !seen[k] {
			seen[k] = true
			*list = append(*list, ev.AggregateID)
		}
	}
	for _, ev := range events {
		switch ev.Aggregate {
		case "product":
			add(&c.products, ev)
		case "category":
			if ev.Kind != "category.created" { // a new category has no products yet
				add(&c.categories, ev)
			}
		case "brand":
			if ev.Kind != "brand.created" {
				add(&c.brands, ev)
			}
		case "search":
			c.controls = true
		}
		// "inventory" events change no document: search does not show stock.
	}
	return c
}

// Handle applies a batch of outbox events; it is the handler of the consumer's relay
// (store.Relay). It is idempotent: the relay redoes a batch that failed or whose relay
// died, and a document write is refused when the index already has its version. Documents
// are read from PostgreSQL as they are now, whatever the events say, so that a batch
// brings the index up to date with the database.
func (ix *Indexer) Handle(ctx context.Context, events []model.OutboxEvent) error {
	if len(events) == 0 {
		return nil
	}
	c := classify(events)
	targets, err := ix.writeTargets(ctx)
	if err != nil {
		return err
	}
	st, err := ix.writeProducts(ctx, targets, c.products, "external")
	if err != nil {
		return err
	}
	if c.controls {
		ix.es.ForgetWords() // a synonym can make an unknown word known
		select {
		case ix.synonyms <- struct{}{}:
		default: // an update is due already
		}
	}
	if err := ix.refreshDenormalized(ctx, targets, c); err != nil {
		return err
	}
	ix.observe(events, st)
	ix.announceVisible()
	return nil
}

// announceVisible makes what the indexer wrote searchable at once (a refresh of the alias)
// and then calls OnVisible, in the background: the relay does not wait. Writes made while a
// Refresh runs get another one after it.
func (ix *Indexer) announceVisible() {
	if ix.opts.OnVisible == nil {
		return
	}
	ix.unrefreshed.Store(true)
	if !ix.refreshing.CompareAndSwap(false, true) {
		return // the running refresh goes round again
	}
	go func() {
		for {
			ix.unrefreshed.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := ix.es.Refresh(ctx, ix.es.Alias()); err != nil {
				ix.log.Warn("search: refresh after a write failed; cached results may wait for their TTL", "err", err)
			}
			cancel()
			ix.opts.OnVisible()
			ix.refreshing.Store(false)
			if !ix.unrefreshed.Load() || !ix.refreshing.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// writeTargets are the aliases writes go to: the alias, and the index being rebuilt when a
// rebuild runs. A missing alias is created first (Ensure).
func (ix *Indexer) writeTargets(ctx context.Context) ([]string, error) {
	live, err := ix.es.AliasIndices(ctx, ix.es.Alias())
	if err != nil {
		return nil, err
	}
	if len(live) == 0 {
		if err := ix.Ensure(ctx); err != nil {
			return nil, err
		}
	}
	next, err := ix.es.AliasIndices(ctx, elastic.NextAlias(ix.es.Alias()))
	if err != nil {
		return nil, err
	}
	if len(next) > 0 {
		return []string{ix.es.Alias(), elastic.NextAlias(ix.es.Alias())}, nil
	}
	return []string{ix.es.Alias()}, nil
}

// writeConcurrency is how many chunks of one batch are loaded and written at once: two
// keep both PostgreSQL and the cluster busy (a chunk's load overlaps another's bulk), so
// that a large change drains quickly and holds up the changes queued behind it less.
const writeConcurrency = 2

// minChunk is the smallest chunk worth splitting a batch into.
const minChunk = 100

// writeProducts loads the documents of ids and writes them to every target, in chunks of
// at most elastic.MaxBulkDocs written concurrently; a product that no longer exists is deleted from
// the index.
func (ix *Indexer) writeProducts(ctx context.Context, targets, ids []string, versionType string) (elastic.BulkStats, error) {
	size := min(elastic.MaxBulkDocs, max(minChunk, (len(ids)+writeConcurrency-1)/writeConcurrency))
	var chunks [][]string
	for len(ids) > 0 {
		n := min(len(ids), size)
		chunks, ids = append(chunks, ids[:n]), ids[n:]
	}
	var (
		mu       sync.Mutex
		total    elastic.BulkStats
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, writeConcurrency)
	for _, chunk := range chunks {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			st, err := ix.writeChunk(ctx, targets, chunk, versionType)
			mu.Lock()
			defer mu.Unlock()
			total.Add(st)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	return total, firstErr
}

// writeChunk loads and writes one chunk of ids to every target.
func (ix *Indexer) writeChunk(ctx context.Context, targets, ids []string, versionType string) (elastic.BulkStats, error) {
	var total elastic.BulkStats
	items, err := ix.loadItems(ctx, ids)
	if err != nil {
		return total, err
	}
	for _, t := range targets {
		st, err := ix.es.Bulk(ctx, t, items, versionType, true)
		if err != nil && t == elastic.NextAlias(ix.es.Alias()) && elastic.IsMissingAlias(err) {
			// The rebuild swapped the alias (or gave up) between the two writes: the write
			// to the alias may have gone to the old index, so write to the alias again,
			// which now names the new one (a version already there is refused).
			st, err = ix.es.Bulk(ctx, ix.es.Alias(), items, versionType, true)
		}
		if err != nil {
			return total, err
		}
		total.Add(st)
	}
	return total, nil
}

// loadItems makes the bulk writes of ids: their documents, and deletes for ids that are not
// products (any more).
func (ix *Indexer) loadItems(ctx context.Context, ids []string) ([]elastic.BulkItem, error) {
	docs, err := LoadDocuments(ctx, ix.pool, ids)
	if err != nil {
		return nil, err
	}
	items := make([]elastic.BulkItem, 0, len(ids))
	found := make(map[string]bool, len(docs))
	for _, d := range docs {
		items = append(items, elastic.BulkItem{Doc: d})
		found[d.ProductID] = true
	}
	for _, id := range ids {
		if !found[id] && model.IsUUID(id) {
			items = append(items, elastic.BulkItem{Doc: &elastic.Document{ProductID: id}, Delete: true})
		}
	}
	return items, nil
}

// refreshDenormalized rewrites the products that show a renamed brand or a renamed or
// moved category. Their row version did not change, so the write uses external_gte: the
// same version with the new names replaces the old.
func (ix *Indexer) refreshDenormalized(ctx context.Context, targets []string, c changes) error {
	if len(c.categories) == 0 && len(c.brands) == 0 {
		return nil
	}
	ids, err := productsOf(ctx, ix.pool, c.categories, c.brands)
	if err != nil {
		return err
	}
	done := make(map[string]bool, len(c.products))
	for _, id := range c.products {
		done[id] = true
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return done[id] })
	st, err := ix.writeProducts(ctx, targets, ids, "external_gte")
	if err != nil {
		return err
	}
	ix.log.Info("search: rewrote products of renamed categories or brands",
		"categories", len(c.categories), "brands", len(c.brands), "products", len(ids), "written", st.Indexed)
	return nil
}

// RunSynonymUpdates keeps the index's synonyms those of the controls until ctx ends: at
// start, and whenever Handle sees the controls change, it rebuilds the index when its
// synonyms differ (UpdateSynonyms). Run it under the supervisor on every instance: the one
// whose relay sees the change acts on it at once, and any instance that starts finds a
// change that a stopped one left undone.
func (ix *Indexer) RunSynonymUpdates(ctx context.Context) error {
	for {
		if err := ix.UpdateSynonyms(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ix.synonyms:
		}
	}
}

// UpdateSynonyms rebuilds the index behind its alias when the live index's synonyms are not
// the controls' (again if they changed during the rebuild). The synonyms are part of the
// index's analysis, which changes only on a closed index: a new index with the new analysis
// and an alias swap keep the live one serving every search meanwhile. The alias missing,
// it does nothing (the consumer's resync builds the index).
func (ix *Indexer) UpdateSynonyms(ctx context.Context) error {
	return db.Hold(ctx, ix.pool, db.SearchRebuildLock(ix.es.Alias()), func(ctx context.Context) error {
		for {
			stale, err := ix.synonymsStale(ctx)
			if err != nil || !stale {
				return err
			}
			ix.log.Info("search: synonyms changed: rebuilding the index behind its alias")
			if _, err := ix.rebuild(ctx); err != nil {
				return err
			}
		}
	})
}

// synonymsStale reports whether the live index's synonyms differ from the controls'.
func (ix *Indexer) synonymsStale(ctx context.Context) (bool, error) {
	live, err := ix.es.AliasIndices(ctx, ix.es.Alias())
	if err != nil || len(live) == 0 {
		return false, err
	}
	lines, err := ix.synonymLines(ctx)
	if err != nil {
		return false, err
	}
	have, err := ix.es.IndexSynonyms(ctx, live[0])
	if err != nil {
		return false, err
	}
	return !slices.Equal(have, lines) && (len(have) > 0 || len(lines) > 0), nil
}

// synonymLines returns the synonyms of the controls in the filter's format.
func (ix *Indexer) synonymLines(ctx context.Context) ([]string, error) {
	if ix.opts.Controls == nil {
		return []string{}, nil
	}
	rules, err := ix.opts.Controls.Synonyms(ctx)
	if err != nil {
		return nil, err
	}
	return relevance.SynonymLines(rules), nil
}

// observe reports the sync lag of the events just applied, and logs the batch.
func (ix *Indexer) observe(events []model.OutboxEvent, st elastic.BulkStats) {
	now := time.Now()
	var worst time.Duration
	for _, ev := range events {
		lag := now.Sub(ev.CreatedAt)
		worst = max(worst, lag)
		if ix.opts.ObserveLag != nil {
			ix.opts.ObserveLag(ev.Kind, lag)
		}
	}
	level := slog.LevelDebug
	if worst > time.Second {
		level = slog.LevelInfo
	}
	ix.log.Log(context.Background(), level, "search: events applied", "events", len(events),
		"written", st.Indexed, "already_current", st.Conflicts, "max_lag", worst.Round(time.Millisecond))
}

// Consumer is the indexer as a reader of the change feed: Handle applies the events, and
// Resync, which the feed runs when the consumer is new or comes back after missing events
// or when the alias is gone, builds the index when it does not exist and reconciles it
// otherwise.
func (ix *Indexer) Consumer() feed.Consumer {
	return feed.Consumer{Name: ix.opts.Consumer, Handle: ix.Handle, Resync: ix.resync, NeedsResync: ix.missing,
		Poll: 500 * time.Millisecond}
}

func (ix *Indexer) resync(ctx context.Context) error {
	built, err := ix.ensure(ctx)
	if err != nil || built {
		return err
	}
	_, err = ix.Reconcile(ctx)
	return err
}

// missing reports whether the alias is gone (deleted by hand, or a new cluster).
func (ix *Indexer) missing(ctx context.Context) (bool, error) {
	live, err := ix.es.AliasIndices(ctx, ix.es.Alias())
	return len(live) == 0, err
}

// Ensure makes sure the alias exists, building the index from PostgreSQL when it does not
// (a bootstrap). Register the indexer's consumer of the feed first (its relay does), so
// that every change committed after the load began reaches the index.
func (ix *Indexer) Ensure(ctx context.Context) error {
	_, err := ix.ensure(ctx)
	return err
}

// ensure is Ensure, reporting whether it built the index.
func (ix *Indexer) ensure(ctx context.Context) (built bool, err error) {
	if missing, err := ix.missing(ctx); err != nil || !missing {
		return false, err
	}
	err = db.Hold(ctx, ix.pool, db.SearchRebuildLock(ix.es.Alias()), func(ctx context.Context) error {
		missing, err := ix.missing(ctx)
		if err != nil || !missing {
			return err // another instance built it while this one waited
		}
		ix.log.Info("search: the index does not exist yet: building it")
		_, err = ix.rebuild(ctx)
		built = err == nil
		return err
	})
	return built, err
}
