package indexer

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/search/elastic"
)

// ReconcileReport says what a reconciliation found and did.
type ReconcileReport struct {
	Products  int // in PostgreSQL
	Documents int // in the index
	Missing   int // products without a document
	Stale     int // documents older than their product
	Extra     int // documents of no product
	// Ahead counts documents newer than their product, which only a database restored to
	// an earlier state explains: external versions cannot go back, so only a Reindex
	// repairs them.
	Ahead    int
	Repaired int // documents written or deleted
	Elapsed  time.Duration
}

// Drift is how many documents were wrong.
func (r ReconcileReport) Drift() int { return r.Missing + r.Stale + r.Extra + r.Ahead }

// reconcileBatch is the page size of the PostgreSQL side of a reconciliation.
const reconcileBatch = 10_000

// Reconcile compares (id, version) between PostgreSQL and the index and repairs what
// differs: it writes the documents of missing and stale products and deletes documents of
// no product. Whatever looks wrong is checked again against PostgreSQL before it is
// repaired, so that a change committed during the comparison is not mistaken for drift.
// It logs a line with the counts.
func (ix *Indexer) Reconcile(ctx context.Context) (ReconcileReport, error) {
	rep, err := ix.reconcileTarget(ctx, ix.es.Alias(), true)
	if err != nil {
		return rep, err
	}
	level := slog.LevelInfo
	if rep.Drift() > 0 {
		level = slog.LevelWarn
	}
	ix.log.Log(ctx, level, "search: reconciled", "products", rep.Products, "documents", rep.Documents,
		"missing", rep.Missing, "stale", rep.Stale, "extra", rep.Extra, "ahead", rep.Ahead,
		"repaired", rep.Repaired, "elapsed", rep.Elapsed.Round(time.Millisecond))
	return rep, nil
}

// reconcileTarget reconciles target, an alias (writes require it) or a concrete index.
// PostgreSQL's versions are read first, then the index is scanned: a document can only be
// newer than what was read, never older, unless it really is stale.
func (ix *Indexer) reconcileTarget(ctx context.Context, target string, isAlias bool) (ReconcileReport, error) {
	began := time.Now()
	var rep ReconcileReport
	want := map[string]int64{}
	err := StreamVersions(ctx, ix.pool, reconcileBatch, func(page []elastic.IDVersion) error {
		for _, p := range page {
			want[p.ID] = p.Version
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	rep.Products = len(want)
	// Searches see what the last refresh made visible: refresh, so that the scan sees
	// every write that was acknowledged before it.
	if err := ix.es.Refresh(ctx, target); err != nil {
		return rep, err
	}
	var suspects []string // stale, ahead or extra: to check again
	err = ix.es.ScanVersions(ctx, target, func(page []elastic.IDVersion) error {
		rep.Documents += len(page)
		for _, d := range page {
			v, ok := want[d.ID]
			delete(want, d.ID)
			if !ok || v != d.Version {
				suspects = append(suspects, d.ID)
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	missing := make([]string, 0, len(want))
	for id := range want {
		missing = append(missing, id)
	}
	rep.Missing = len(missing)
	if err := ix.repair(ctx, target, isAlias, missing, suspects, &rep); err != nil {
		return rep, err
	}
	rep.Elapsed = time.Since(began)
	return rep, nil
}

// repair writes the missing documents, and classifies the suspects against the current
// rows and the index's current versions before it rewrites or deletes them.
func (ix *Indexer) repair(ctx context.Context, target string, isAlias bool, missing, suspects []string, rep *ReconcileReport) error {
	ids := append(missing, suspects...)
	for len(ids) > 0 {
		n := min(len(ids), elastic.MaxBulkDocs)
		items, err := ix.loadItems(ctx, ids[:n])
		if err != nil {
			return err
		}
		have, err := ix.es.VersionsOf(ctx, target, ids[:n])
		if err != nil {
			return err
		}
		var writes, absent []elastic.BulkItem
		for _, it := range items {
			v, indexed := have[it.Doc.ProductID]
			switch {
			case it.Delete && indexed:
				rep.Extra++
				writes = append(writes, it)
			case it.Delete: // gone from both
			case !indexed:
				absent = append(absent, it)
			case v < it.Doc.Version:
				rep.Stale++
				writes = append(writes, it)
			case v > it.Doc.Version:
				rep.Ahead++
			}
		}
		written, err := ix.writeRepairs(ctx, target, isAlias, writes, absent)
		if err != nil {
			return err
		}
		rep.Repaired += written
		ids = ids[n:]
	}
	return nil
}

// writeRepairs writes the repairs and the documents found absent. A document deleted
// behind the indexer's back leaves a delete tombstone that refuses its version until a
// Refresh prunes it (gc_deletes is 0, but the engine's clock for tombstones ticks every
// 200ms): such writes are retried after a pause and a refresh, a few times.
func (ix *Indexer) writeRepairs(ctx context.Context, target string, isAlias bool, writes, absent []elastic.BulkItem) (int, error) {
	st, err := ix.es.Bulk(ctx, target, append(writes, absent...), "external", isAlias)
	if err != nil {
		return 0, err
	}
	written := st.Indexed
	retry := absent
	for attempt := 0; attempt < 5; attempt++ {
		retry = slices.DeleteFunc(retry, func(it elastic.BulkItem) bool { return !slices.Contains(st.Conflicted, it.Doc.ProductID) })
		if len(retry) == 0 {
			return written, nil
		}
		time.Sleep(150 * time.Millisecond)
		if err := ix.es.Refresh(ctx, target); err != nil {
			return written, err
		}
		if st, err = ix.es.Bulk(ctx, target, retry, "external", isAlias); err != nil {
			return written, err
		}
		written += st.Indexed
	}
	return written, nil
}

// RunReconciler reconciles every interval until ctx ends. Only one instance reconciles at
// a time (a try-lock in PostgreSQL): the others skip their turn. Run it under the
// supervisor.
func (ix *Indexer) RunReconciler(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		ran, err := db.TryHold(ctx, ix.pool, db.SearchReconcileLock(ix.es.Alias()), func(ctx context.Context) error {
			_, err := ix.Reconcile(ctx)
			return err
		})
		if err != nil && ctx.Err() == nil {
			ix.log.Warn("search: reconcile failed", "err", err)
		} else if !ran {
			ix.log.Debug("search: another instance is reconciling")
		}
	}
}
