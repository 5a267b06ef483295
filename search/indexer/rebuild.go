package indexer

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/search/elastic"
)

// ReindexStats says what a rebuild did.
type ReindexStats struct {
	Index     string   // the new index the alias now names
	Replaced  []string // the indices it replaced, now deleted
	Documents int      // documents the bulk load wrote
	// CaughtUp counts the documents the pass after the load rewrote: changes the relay
	// wrote only to the old index while the load ran.
	CaughtUp      int
	Elapsed       time.Duration
	DocsPerSecond float64 // of the bulk load
}

// Reindex rebuilds the index from PostgreSQL without a failed search or a lost change:
//
//  1. It creates a new index (named after the alias and the time) with the current
//     synonyms and the "next" alias on it: from then on the relay writes every change to
//     both the live index and the new one.
//  2. It bulk-loads every product, a keyset page at a time, with LoadWorkers bulk
//     requests in flight, refreshing only at the end. External versions make the load
//     and the relay's writes commute: whichever is newer stays.
//  3. It compares (id, version) of the new index with PostgreSQL and repairs what differs
//     (a change the relay handled just before the next alias appeared), then swaps the
//     alias in one _aliases call: a search runs on the old index or the new one.
//  4. After SwapGrace and once no search runs on them, it deletes the old indices.
//
// One rebuild runs at a time per alias (an advisory lock in PostgreSQL).
func (ix *Indexer) Reindex(ctx context.Context) (ReindexStats, error) {
	var st ReindexStats
	err := db.Hold(ctx, ix.pool, db.SearchRebuildLock(ix.es.Alias()), func(ctx context.Context) error {
		var err error
		st, err = ix.rebuild(ctx)
		return err
	})
	return st, err
}

// rebuild does the work of Reindex; the caller holds the rebuild lock.
func (ix *Indexer) rebuild(ctx context.Context) (st ReindexStats, err error) {
	began := time.Now()
	alias, next := ix.es.Alias(), elastic.NextAlias(ix.es.Alias())
	if err := ix.dropAbandoned(ctx); err != nil {
		return st, err
	}
	lines, err := ix.synonymLines(ctx)
	if err != nil {
		return st, err
	}
	st.Index = elastic.NewIndexName(alias)
	if err := ix.es.CreateIndex(ctx, st.Index, lines, "-1"); err != nil {
		return st, err
	}
	defer func() {
		if err != nil { // the index is incomplete: nobody must read or write it
			cleanup := context.WithoutCancel(ctx)
			_ = ix.es.UpdateAliases(cleanup, elastic.RemoveAlias(st.Index, next))
			_ = ix.es.DeleteIndex(cleanup, st.Index)
		}
	}()
	if err := ix.es.UpdateAliases(ctx, elastic.AddAlias(st.Index, next)); err != nil {
		return st, err
	}
	loadBegan := time.Now()
	if st.Documents, err = ix.load(ctx, st.Index); err != nil {
		return st, err
	}
	st.DocsPerSecond = float64(st.Documents) / time.Since(loadBegan).Seconds()
	if err := ix.finishLoad(ctx, st.Index); err != nil {
		return st, err
	}
	rep, err := ix.reconcileTarget(ctx, st.Index, false)
	if err != nil {
		return st, err
	}
	st.CaughtUp = rep.Repaired
	if st.Replaced, err = ix.swap(ctx, st.Index); err != nil {
		return st, err
	}
	ix.es.ForgetWords() // the new index may know words through its synonyms
	if ix.opts.OnVisible != nil {
		ix.opts.OnVisible()
	}
	// Synonyms changed during the load are the business of UpdateSynonyms, which the
	// change wakes: it rebuilds again.
	ix.retire(ctx, st.Replaced)
	st.Elapsed = time.Since(began)
	ix.log.Info("search: index rebuilt", "new_index", st.Index, "replaced", st.Replaced, "documents", st.Documents,
		"caught_up", st.CaughtUp, "docs_per_second", int(st.DocsPerSecond), "elapsed", st.Elapsed.Round(time.Millisecond))
	return st, nil
}

// dropAbandoned deletes what an interrupted rebuild left: indices under the next alias
// that the alias itself does not name.
func (ix *Indexer) dropAbandoned(ctx context.Context) error {
	next, err := ix.es.AliasIndices(ctx, elastic.NextAlias(ix.es.Alias()))
	if err != nil {
		return err
	}
	live, err := ix.es.AliasIndices(ctx, ix.es.Alias())
	if err != nil {
		return err
	}
	for _, index := range next {
		if err := ix.es.UpdateAliases(ctx, elastic.RemoveAlias(index, elastic.NextAlias(ix.es.Alias()))); err != nil {
			return err
		}
		if !slices.Contains(live, index) {
			ix.log.Warn("search: deleting the index of an interrupted rebuild", "abandoned_index", index)
			if err := ix.es.DeleteIndex(ctx, index); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadPage is how many documents one keyset query reads and one bulk request writes.
const loadPage = elastic.MaxBulkDocs

// load writes every product into index: one goroutine reads keyset pages from PostgreSQL
// while LoadWorkers goroutines send them as bulk requests.
func (ix *Indexer) load(ctx context.Context, index string) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pages := make(chan []*elastic.Document, ix.opts.LoadWorkers)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		written int
	)
	for range ix.opts.LoadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for docs := range pages {
				items := make([]elastic.BulkItem, len(docs))
				for i, d := range docs {
					items[i] = elastic.BulkItem{Doc: d}
				}
				st, err := ix.es.Bulk(ctx, index, items, "external", false)
				if err != nil {
					cancel(err)
					continue // drain, so that the reader never blocks
				}
				mu.Lock()
				written += st.Indexed + st.Conflicts
				mu.Unlock()
			}
		}()
	}
	readErr := ix.readAll(ctx, pages)
	close(pages)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return written, err
	}
	return written, readErr
}

// readAll sends every document, a keyset page at a time, until done or ctx ends.
func (ix *Indexer) readAll(ctx context.Context, pages chan<- []*elastic.Document) error {
	after := ""
	for {
		docs, err := loadDocumentsAfter(ctx, ix.pool, after, loadPage)
		if err != nil {
			return err
		}
		if len(docs) == 0 {
			return nil
		}
		select {
		case pages <- docs:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if len(docs) < loadPage {
			return nil
		}
		after = docs[len(docs)-1].ProductID
	}
}

// finishLoad turns the loaded index into a live one.
func (ix *Indexer) finishLoad(ctx context.Context, index string) error {
	return ix.es.GoLive(ctx, index)
}

// swap points the alias at index instead of what it named, and takes the next alias off
// index, in one atomic call. It returns the indices the alias named before.
func (ix *Indexer) swap(ctx context.Context, index string) ([]string, error) {
	alias := ix.es.Alias()
	old, err := ix.es.AliasIndices(ctx, alias)
	if err != nil {
		return nil, err
	}
	actions := []elastic.AliasAction{elastic.AddAlias(index, alias), elastic.RemoveAlias(index, elastic.NextAlias(alias))}
	for _, o := range old {
		actions = append(actions, elastic.RemoveAlias(o, alias))
	}
	if err := ix.es.UpdateAliases(ctx, actions...); err != nil {
		return nil, err
	}
	return old, nil
}

// retire deletes the replaced indices once searches that resolved the alias before the
// swap are done: after SwapGrace, and when the index reports no search running (for at
// most a minute more). A failure only leaves an unused index behind: it is logged.
func (ix *Indexer) retire(ctx context.Context, indices []string) {
	for _, index := range indices {
		timer := time.NewTimer(ix.opts.SwapGrace)
		select {
		case <-ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
		ctx := context.WithoutCancel(ctx)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			busy, err := ix.es.SearchesRunning(ctx, index)
			if err != nil || busy == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := ix.es.DeleteIndex(ctx, index); err != nil {
			ix.log.Warn("search: could not delete the replaced index", "old_index", index, "err", err)
		}
	}
}
