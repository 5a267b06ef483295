package search

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/homegoods/storefront/db"
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
	err := db.Hold(ctx, ix.pool, db.SearchRebuildLock(ix.es.alias), func(ctx context.Context) error {
		var err error
		st, err = ix.rebuild(ctx)
		return err
	})
	return st, err
}

// rebuild does the work of Reindex; the caller holds the rebuild lock.
func (ix *Indexer) rebuild(ctx context.Context) (st ReindexStats, err error) {
	began := time.Now()
	alias, next := ix.es.alias, nextAlias(ix.es.alias)
	if err := ix.dropAbandoned(ctx); err != nil {
		return st, err
	}
	lines, err := ix.synonymLines(ctx)
	if err != nil {
		return st, err
	}
	st.Index = newIndexName(alias)
	if err := ix.es.createIndex(ctx, st.Index, lines, "-1"); err != nil {
		return st, err
	}
	defer func() {
		if err != nil { // the index is incomplete: nobody must read or write it
			cleanup := context.WithoutCancel(ctx)
			_ = ix.es.updateAliases(cleanup, removeAlias(st.Index, next))
			_ = ix.es.deleteIndex(cleanup, st.Index)
		}
	}()
	if err := ix.es.updateAliases(ctx, addAlias(st.Index, next)); err != nil {
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
	ix.es.words.reset() // the new index may know words through its synonyms
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
	next, err := ix.es.aliasIndices(ctx, nextAlias(ix.es.alias))
	if err != nil {
		return err
	}
	live, err := ix.es.aliasIndices(ctx, ix.es.alias)
	if err != nil {
		return err
	}
	for _, index := range next {
		if err := ix.es.updateAliases(ctx, removeAlias(index, nextAlias(ix.es.alias))); err != nil {
			return err
		}
		if !slices.Contains(live, index) {
			ix.log.Warn("search: deleting the index of an interrupted rebuild", "abandoned_index", index)
			if err := ix.es.deleteIndex(ctx, index); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadPage is how many documents one keyset query reads and one bulk request writes.
const loadPage = maxBulkDocs

// load writes every product into index: one goroutine reads keyset pages from PostgreSQL
// while LoadWorkers goroutines send them as bulk requests.
func (ix *Indexer) load(ctx context.Context, index string) (int, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pages := make(chan []*Document, ix.opts.LoadWorkers)
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
				items := make([]bulkItem, len(docs))
				for i, d := range docs {
					items[i] = bulkItem{doc: d}
				}
				st, err := ix.es.bulk(ctx, index, items, "external", false)
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
func (ix *Indexer) readAll(ctx context.Context, pages chan<- []*Document) error {
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

// finishLoad turns the loaded index into a live one: near-real-time refreshes, a durable
// translog and its replicas again, and a refresh so that everything loaded is searchable.
func (ix *Indexer) finishLoad(ctx context.Context, index string) error {
	err := ix.es.putSettings(ctx, index, map[string]any{
		"refresh_interval":   refreshInterval,
		"translog":           map[string]any{"durability": "request"},
		"number_of_replicas": ix.es.replicas,
	})
	if err != nil {
		return err
	}
	// Unlike a refresh of a few changes, this one writes the segments of every document
	// loaded: tens of seconds for 100,000 products on a busy node, past the bound of one
	// request, and a rebuild that gives up here starts over and never ends.
	if err := ix.es.doWithin(ctx, loadRefreshTimeout, "POST", "/"+index+"/_refresh", nil, nil); err != nil {
		return fmt.Errorf("refresh %s: %w", index, err)
	}
	return nil
}

// loadRefreshTimeout bounds the refresh that makes a fully loaded index searchable.
const loadRefreshTimeout = 5 * time.Minute

// swap points the alias at index instead of what it named, and takes the next alias off
// index, in one atomic call. It returns the indices the alias named before.
func (ix *Indexer) swap(ctx context.Context, index string) ([]string, error) {
	alias := ix.es.alias
	old, err := ix.es.aliasIndices(ctx, alias)
	if err != nil {
		return nil, err
	}
	actions := []aliasAction{addAlias(index, alias), removeAlias(index, nextAlias(alias))}
	for _, o := range old {
		actions = append(actions, removeAlias(o, alias))
	}
	if err := ix.es.updateAliases(ctx, actions...); err != nil {
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
			busy, err := ix.es.searchesRunning(ctx, index)
			if err != nil || busy == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := ix.es.deleteIndex(ctx, index); err != nil {
			ix.log.Warn("search: could not delete the replaced index", "old_index", index, "err", err)
		}
	}
}

// searchesRunning returns how many search phases run on index now.
func (e *Elastic) searchesRunning(ctx context.Context, index string) (int, error) {
	var st struct {
		All struct {
			Total struct {
				Search struct {
					QueryCurrent  int `json:"query_current"`
					FetchCurrent  int `json:"fetch_current"`
					ScrollCurrent int `json:"scroll_current"`
				} `json:"search"`
			} `json:"total"`
		} `json:"_all"`
	}
	if err := e.do(ctx, "GET", "/"+index+"/_stats/search", nil, &st); err != nil {
		return 0, err
	}
	s := st.All.Total.Search
	return s.QueryCurrent + s.FetchCurrent, nil
}

// scanVersions calls fn with the ids and versions of every document of target, a scroll
// page at a time, in no particular order.
func (e *Elastic) scanVersions(ctx context.Context, target string, fn func([]IDVersion) error) error {
	body := obj{"size": 5000, "_source": false, "version": true, "sort": []any{"_doc"}, "query": obj{"match_all": obj{}}}
	var page scrollPage
	if err := e.do(ctx, "POST", "/"+target+"/_search?scroll=2m", body, &page); err != nil {
		return fmt.Errorf("scan %s: %w", target, err)
	}
	defer func() {
		if page.ScrollID != "" {
			_ = e.do(context.WithoutCancel(ctx), "DELETE", "/_search/scroll", obj{"scroll_id": []string{page.ScrollID}}, nil)
		}
	}()
	for len(page.Hits.Hits) > 0 {
		batch := make([]IDVersion, len(page.Hits.Hits))
		for i, h := range page.Hits.Hits {
			batch[i] = IDVersion{ID: h.ID, Version: h.Version}
		}
		if err := fn(batch); err != nil {
			return err
		}
		id := page.ScrollID
		page = scrollPage{}
		if err := e.do(ctx, "POST", "/_search/scroll", obj{"scroll": "2m", "scroll_id": id}, &page); err != nil {
			page.ScrollID = id
			return fmt.Errorf("scan %s: %w", target, err)
		}
	}
	return nil
}

type scrollPage struct {
	ScrollID string `json:"_scroll_id"`
	Hits     struct {
		Hits []struct {
			ID      string `json:"_id"`
			Version int64  `json:"_version"`
		} `json:"hits"`
	} `json:"hits"`
}
