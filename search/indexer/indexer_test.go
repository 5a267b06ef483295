package indexer

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/homegoods/storefront/db"
	"github.com/homegoods/storefront/db/feed"
	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/elastic"
	"github.com/homegoods/storefront/search/relevance"
	"github.com/homegoods/storefront/search/searchtest"
)

// docState is what a test reads of a document.
type docState struct {
	Version    int64
	Status     string
	PriceCents int64
	Name       string
	Category   string
}

// indexState returns every document of target by id (test indices are small).
func indexState(t *testing.T, es *elastic.Engine, target string) map[string]docState {
	t.Helper()
	ctx := context.Background()
	if err := es.Refresh(ctx, target); err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Hits struct {
			Hits []struct {
				ID      string `json:"_id"`
				Version int64  `json:"_version"`
				Source  struct {
					Status     string `json:"status"`
					PriceCents int64  `json:"price_cents"`
					Name       string `json:"name"`
					Category   string `json:"category"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	body := map[string]any{"size": 10000, "version": true, "_source": []string{"status", "price_cents", "name", "category"},
		"query": map[string]any{"match_all": map[string]any{}}}
	if err := es.Do(ctx, "POST", "/"+target+"/_search", body, &ans); err != nil {
		t.Fatal(err)
	}
	out := map[string]docState{}
	for _, h := range ans.Hits.Hits {
		out[h.ID] = docState{Version: h.Version, Status: h.Source.Status, PriceCents: h.Source.PriceCents,
			Name: h.Source.Name, Category: h.Source.Category}
	}
	return out
}

// pgVersions returns every product's version.
func pgVersions(t *testing.T, pool *pgxpool.Pool) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := StreamVersions(context.Background(), pool, 1000, func(page []elastic.IDVersion) error {
		for _, p := range page {
			out[p.ID] = p.Version
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// assertInSync fails t unless the index holds every product at its current version, and
// nothing else.
func assertInSync(t *testing.T, ix *Indexer) {
	t.Helper()
	want := pgVersions(t, ix.pool)
	got := indexState(t, ix.es, ix.es.Alias())
	if len(got) != len(want) {
		t.Errorf("index holds %d documents; want %d", len(got), len(want))
	}
	wrong := 0
	for id, v := range want {
		if got[id].Version != v {
			if wrong++; wrong <= 5 {
				t.Errorf("document %s at version %d; want %d", id, got[id].Version, v)
			}
		}
	}
	if wrong > 5 {
		t.Errorf("... %d documents in all are not at their product's version", wrong)
	}
}

// outboxAfter returns the outbox events after id, in order.
func outboxAfter(t *testing.T, pool *pgxpool.Pool, after int64) []model.OutboxEvent {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
SELECT id, aggregate, aggregate_id, kind, version, payload, created_at FROM outbox WHERE id > $1 ORDER BY id`, after)
	if err != nil {
		t.Fatal(err)
	}
	events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[model.OutboxEvent])
	if err != nil {
		t.Fatal(err)
	}
	return events
}

func lastOutboxID(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM outbox`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// activeProducts returns the ids of n active products.
func activeProducts(t *testing.T, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id::text FROM products WHERE status = 'ACTIVE' ORDER BY id LIMIT $1`, n)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func mustHandle(t *testing.T, ix *Indexer, events []model.OutboxEvent) {
	t.Helper()
	if err := ix.Handle(context.Background(), events); err != nil {
		t.Fatalf("handle %d events: %v", len(events), err)
	}
}

// TestIndexerReplayedBatch: the relay redoes a batch whose deletion from the queue did not
// commit; applying the same batch twice leaves the index exactly as once.
func TestIndexerReplayedBatch(t *testing.T) {
	pool := searchtest.SeededPool(t, 300)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())
	mark := lastOutboxID(t, pool)
	ids := activeProducts(t, pool, 20)
	searchtest.Reprice(t, pool, ids, 1000)
	searchtest.Archive(t, pool, ids[0])
	events := outboxAfter(t, pool, mark)
	mustHandle(t, ix, events)
	once := indexState(t, es, es.Alias())
	mustHandle(t, ix, events)
	twice := indexState(t, es, es.Alias())
	if len(once) != len(twice) {
		t.Fatalf("replay changed the document count from %d to %d", len(once), len(twice))
	}
	for id, d := range once {
		if twice[id] != d {
			t.Errorf("replay changed %s from %+v to %+v", id, d, twice[id])
		}
	}
	assertInSync(t, ix)
}

// TestIndexerOutOfOrder: a write that read the product before a newer change and arrives
// after it (a slow relay, a late retry) is refused: the newer document stays.
func TestIndexerOutOfOrder(t *testing.T) {
	pool := searchtest.SeededPool(t, 100)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())
	id := activeProducts(t, pool, 1)[0]
	ctx := context.Background()

	searchtest.Reprice(t, pool, []string{id}, 1111)
	stale, err := LoadDocuments(ctx, pool, []string{id}) // read at this version...
	if err != nil {
		t.Fatal(err)
	}
	mark := lastOutboxID(t, pool)
	searchtest.Reprice(t, pool, []string{id}, 2222) // ...overtaken by a newer change, applied first
	mustHandle(t, ix, outboxAfter(t, pool, mark))
	got, err := es.Bulk(ctx, es.Alias(), []elastic.BulkItem{{Doc: stale[0]}}, "external", true)
	if err != nil {
		t.Fatalf("late write: %v", err)
	}
	if got.Conflicts != 1 || got.Indexed != 0 {
		t.Errorf("late write of version %d: %+v; want one conflict", stale[0].Version, got)
	}
	d := indexState(t, es, es.Alias())[id]
	if d.PriceCents != 2222 || d.Version != stale[0].Version+1 {
		t.Errorf("document after the late write: %+v; want price 2222 at version %d", d, stale[0].Version+1)
	}
}

// TestIndexerArchiveIsSoftDelete: an archived product stays in the index, not ACTIVE, with
// its version: searches no longer find it, and a late write of its older active state
// cannot bring it back.
func TestIndexerArchiveIsSoftDelete(t *testing.T) {
	pool := searchtest.SeededPool(t, 100)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())
	ctx := context.Background()
	id := activeProducts(t, pool, 1)[0]
	before, err := LoadDocuments(ctx, pool, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	mark := lastOutboxID(t, pool)
	searchtest.Archive(t, pool, id)
	mustHandle(t, ix, outboxAfter(t, pool, mark))
	d := indexState(t, es, es.Alias())[id]
	if d.Status != "ARCHIVED" || d.Version != before[0].Version+1 {
		t.Fatalf("archived document: %+v; want ARCHIVED at version %d", d, before[0].Version+1)
	}
	if found := searchFinds(t, es, before[0].Name, id); found {
		t.Errorf("a search still finds archived product %s", id)
	}
	// The active document of before the archive arrives late: refused.
	if _, err := es.Bulk(ctx, es.Alias(), []elastic.BulkItem{{Doc: before[0]}}, "external", true); err != nil {
		t.Fatal(err)
	}
	if d := indexState(t, es, es.Alias())[id]; d.Status != "ARCHIVED" {
		t.Errorf("a late write resurrected archived product %s: %+v", id, d)
	}
	if found := searchFinds(t, es, before[0].Name, id); found {
		t.Errorf("a search finds archived product %s after a late write", id)
	}
}

// refreshAlias makes every acknowledged write searchable now, rather than at the next
// periodic refresh.
func refreshAlias(t *testing.T, es *elastic.Engine) {
	t.Helper()
	if err := es.Refresh(context.Background(), es.Alias()); err != nil {
		t.Fatal(err)
	}
}

// searchFinds tells whether searching text finds product id (within the first 100).
func searchFinds(t *testing.T, es *elastic.Engine, text, id string) bool {
	t.Helper()
	res, err := es.Search(context.Background(), model.SearchQuery{Text: text, First: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Hits {
		if h.ProductID == id {
			return true
		}
	}
	return false
}

// waitQueueEmpty waits until the relay has handled every event of the consumer.
func waitQueueEmpty(t *testing.T, pool *pgxpool.Pool, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var n int
		err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_pending WHERE consumer = $1`, DefaultConsumer).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events still pending after %s", n, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dyingTransport forwards requests; once armed, after the first bulk request reached the
// cluster (which applied it), it calls die and fails the request as a dropped connection.
type dyingTransport struct {
	base  http.RoundTripper
	armed atomic.Bool
	die   func()
}

func (d *dyingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := d.base.RoundTrip(req)
	if err != nil || !strings.Contains(req.URL.Path, "_bulk") || !d.armed.CompareAndSwap(true, false) {
		return res, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	d.die()
	return nil, errors.New("connection reset by peer (test)")
}

// TestIndexerRelayKilledMidBatch: the leader dies after its bulk request reached the
// cluster but before the batch left the queue; the standby becomes leader, redoes the whole
// batch (the written part is refused as current), and the index ends in step.
func TestIndexerRelayKilledMidBatch(t *testing.T) {
	pool := searchtest.SeededPool(t, 300)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())

	// The leader's indexer talks to the cluster through a transport that kills it.
	leaderCtx, kill := context.WithCancel(context.Background())
	dying := &dyingTransport{base: http.DefaultTransport, die: kill}
	leaderES, err := elastic.New(elastic.Config{URL: searchtest.ElasticURL(t), Index: es.Alias(), Facets: search.DefaultConfig(),
		HTTPClient: &http.Client{Transport: dying}})
	if err != nil {
		t.Fatal(err)
	}
	leaderIx := New(leaderES, pool, Options{Log: searchtest.TestLog(t)})
	var leaderCalls atomic.Int32
	stopLeader := searchtest.RunRelay(t, leaderCtx, pool, DefaultConsumer, func(ctx context.Context, evs []model.OutboxEvent) error {
		leaderCalls.Add(1)
		return leaderIx.Handle(ctx, evs)
	}, 500)
	waitLeading(t, pool)

	dying.armed.Store(true)
	prices := searchtest.Reprice(t, pool, activeProducts(t, pool, 50), 3000)
	waitFor(t, 10*time.Second, "the leader to die", func() bool { return !dying.armed.Load() })
	stopLeader()
	if n := pendingCount(t, pool); n == 0 {
		t.Fatal("the dead leader's batch left the queue")
	}

	searchtest.RunRelay(t, context.Background(), pool, DefaultConsumer, ix.Handle, 500) // the standby takes over
	waitQueueEmpty(t, pool, 20*time.Second)
	assertInSync(t, ix)
	state := indexState(t, es, es.Alias())
	for id, p := range prices {
		if state[id].PriceCents != p {
			t.Errorf("product %s at price %d in the index; want %d", id, state[id].PriceCents, p)
		}
	}
}

func pendingCount(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_pending WHERE consumer = $1`, DefaultConsumer).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitLeading waits until a relay holds the consumer's advisory lock in the test's database
// (pg_locks lists the locks of every database: other tests' leaders must not count).
func waitLeading(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	key := db.RelayLock(DefaultConsumer).Key()
	waitFor(t, 10*time.Second, "a relay to lead", func() bool {
		var n int
		_ = pool.QueryRow(context.Background(), `
SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()
  AND (l.classid::bigint << 32 | l.objid::bigint) = $1`, key).Scan(&n)
		return n > 0
	})
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIndexerStandbyTakesOver: two relays of the consumer run; the first leads, and when
// its context ends the standby takes over and indexes what follows.
func TestIndexerStandbyTakesOver(t *testing.T) {
	pool := searchtest.SeededPool(t, 300)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())
	var calls [2]atomic.Int32
	handler := func(i int) feed.Handler {
		return func(ctx context.Context, evs []model.OutboxEvent) error {
			calls[i].Add(1)
			return ix.Handle(ctx, evs)
		}
	}
	stopFirst := searchtest.RunRelay(t, context.Background(), pool, DefaultConsumer, handler(0), 100)
	waitLeading(t, pool)
	searchtest.RunRelay(t, context.Background(), pool, DefaultConsumer, handler(1), 100)

	ids := activeProducts(t, pool, 40)
	searchtest.Reprice(t, pool, ids[:20], 5000)
	waitQueueEmpty(t, pool, 20*time.Second)
	if calls[0].Load() == 0 || calls[1].Load() != 0 {
		t.Fatalf("before the leader stopped: leader handled %d batches, standby %d; want the leader alone", calls[0].Load(), calls[1].Load())
	}
	stopFirst()
	prices := searchtest.Reprice(t, pool, ids[20:], 6000)
	waitQueueEmpty(t, pool, 30*time.Second)
	if calls[1].Load() == 0 {
		t.Fatal("the standby handled nothing after the leader stopped")
	}
	state := indexState(t, es, es.Alias())
	for id, p := range prices {
		if state[id].PriceCents != p {
			t.Errorf("product %s at price %d; want %d", id, state[id].PriceCents, p)
		}
	}
	assertInSync(t, ix)
}

// TestReindexUnderLoad: while searches run without pause and products change (indexed by
// a running relay), a rebuild swaps the index: no search fails, and every change is in the
// new index.
func TestReindexUnderLoad(t *testing.T) {
	pool := searchtest.SeededPool(t, 3000)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())
	searchtest.RunRelay(t, context.Background(), pool, DefaultConsumer, ix.Handle, 100)
	before, err := es.AliasIndices(context.Background(), es.Alias())
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var searches, failures atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := []model.SearchQuery{{Text: "oak table"}, {Text: "velvit sofa"}, {}, {Text: "lamp", Sort: model.SearchSortPriceAsc}}[i]
			for ctx.Err() == nil {
				if _, err := es.Search(context.Background(), q); err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
				searches.Add(1)
			}
		}()
	}
	changed := make(chan map[string]int64, 1)
	go func() {
		ids := activeProducts(t, pool, 200)
		out := map[string]int64{}
		for i := 0; ctx.Err() == nil && i < len(ids); i++ {
			price := model.Cents(7000 + i)
			if _, err := searchtest.UpdatePrice(context.Background(), pool, ids[i], price); err == nil {
				out[ids[i]] = int64(price)
			}
			time.Sleep(10 * time.Millisecond)
		}
		changed <- out
	}()

	stats, err := ix.Reindex(context.Background())
	cancel()
	wg.Wait()
	prices := <-changed
	if err != nil {
		t.Fatalf("reindex: %v", err)
	}
	t.Logf("reindex: %+v; %d searches during it", stats, searches.Load())
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d searches failed during the reindex, first: %v", n, searches.Load(), firstFailure.Load())
	}
	if searches.Load() < 10 {
		t.Errorf("only %d searches ran during the reindex", searches.Load())
	}
	after, err := es.AliasIndices(context.Background(), es.Alias())
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || after[0] != stats.Index || after[0] == before[0] {
		t.Errorf("alias names %v after the reindex; want [%s] (it named %v)", after, stats.Index, before)
	}
	waitQueueEmpty(t, pool, 20*time.Second)
	state := indexState(t, es, es.Alias())
	for id, p := range prices {
		if state[id].PriceCents != p {
			t.Errorf("product %s at price %d after the reindex; want %d", id, state[id].PriceCents, p)
		}
	}
	assertInSync(t, ix)
}

// TestReconcileRepairsDrift: drift injected behind the indexer's back (a deleted document,
// a change the relay never saw, a document of no product) is found, repaired and reported.
func TestReconcileRepairsDrift(t *testing.T) {
	pool := searchtest.SeededPool(t, 300)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())
	ctx := context.Background()
	ids := activeProducts(t, pool, 2)

	if err := es.Do(ctx, "DELETE", "/"+es.Alias()+"/_doc/"+ids[0], nil, nil); err != nil { // missing
		t.Fatal(err)
	}
	searchtest.Reprice(t, pool, ids[1:2], 4242) // stale: no relay runs
	extra := &elastic.Document{ProductID: "00000000-0000-4000-8000-000000000001", Name: "Ghost Lamp", Status: "ACTIVE", Version: 1}
	if _, err := es.Bulk(ctx, es.Alias(), []elastic.BulkItem{{Doc: extra}}, "external", true); err != nil {
		t.Fatal(err)
	}

	rep, err := ix.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ReconcileReport{Products: 300, Documents: 300, Missing: 1, Stale: 1, Extra: 1, Repaired: 3}
	rep.Elapsed = 0
	if rep != want {
		t.Errorf("reconcile report: %+v; want %+v", rep, want)
	}
	assertInSync(t, ix)
	if p := indexState(t, es, es.Alias())[ids[1]].PriceCents; p != 4242 {
		t.Errorf("stale product repaired at price %d; want 4242", p)
	}
	again, err := ix.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Drift() != 0 || again.Repaired != 0 {
		t.Errorf("second reconcile: %+v; want no drift", again)
	}
}

// TestIndexerControlsApplySynonyms: a synonym added by a merchandiser reaches the index's
// search analyzer through the outbox, without a restart: the index is rebuilt with the new
// analysis behind its alias while the live one answers every search, and searches use the
// synonym once the alias has swapped.
func TestIndexerControlsApplySynonyms(t *testing.T) {
	pool := searchtest.SeededPool(t, 500)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())
	ctx := context.Background()
	sofas, err := es.Search(ctx, model.SearchQuery{Text: "sofa"})
	if err != nil {
		t.Fatal(err)
	}
	if sofas.Total == 0 {
		t.Fatal("the catalog has no sofas")
	}
	couches, err := es.Search(ctx, model.SearchQuery{Text: "couch"})
	if err != nil {
		t.Fatal(err)
	}
	if couches.Total != 0 {
		t.Fatalf("couch finds %d products before the synonym; want 0", couches.Total)
	}

	mark := lastOutboxID(t, pool)
	controls := relevance.NewControls(pool)
	if _, err := controls.PutSynonym(ctx, model.SynonymRule{Kind: model.SynonymEquivalent, Terms: []string{"couch", "sofa"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := controls.PutSynonym(ctx, model.SynonymRule{Kind: model.SynonymOneWay, Terms: []string{"settee"}, Synonyms: []string{"sleeper sofa"}}); err != nil {
		t.Fatal(err)
	}
	events := outboxAfter(t, pool, mark)
	if len(events) == 0 || events[0].Kind != "search.controls.updated" {
		t.Fatalf("controls changes wrote %v; want search.controls.updated events", events)
	}
	before := aliasIndex(t, es)
	mustHandle(t, ix, events)
	searching := searchAllAlong(t, es, "sofa")
	if err := ix.UpdateSynonyms(ctx); err != nil {
		t.Fatal(err)
	}
	if n := searching(); n == 0 {
		t.Fatal("no search ran during the update")
	}
	if after := aliasIndex(t, es); after == before {
		t.Fatalf("the alias still names %s after the synonyms changed; want a new index", before)
	}

	couches, err = es.Search(ctx, model.SearchQuery{Text: "couch"})
	if err != nil {
		t.Fatal(err)
	}
	if couches.Total != sofas.Total {
		t.Errorf("couch finds %d products after the synonym; want the %d sofas", couches.Total, sofas.Total)
	}
	sleepers, err := es.Search(ctx, model.SearchQuery{Text: "sleeper sofa"})
	if err != nil {
		t.Fatal(err)
	}
	settees, err := es.Search(ctx, model.SearchQuery{Text: "settee"})
	if err != nil {
		t.Fatal(err)
	}
	if sleepers.Total == 0 || settees.Total != sleepers.Total {
		t.Errorf("settee finds %d products; want the %d sleeper sofas", settees.Total, sleepers.Total)
	}
	// Applying the same controls again changes nothing.
	before = aliasIndex(t, es)
	mustHandle(t, ix, events)
	if err := ix.UpdateSynonyms(ctx); err != nil {
		t.Fatal(err)
	}
	if after := aliasIndex(t, es); after != before {
		t.Errorf("the same synonyms again moved the alias from %s to %s; want it kept", before, after)
	}
}

// aliasIndex returns the one index es's alias names.
func aliasIndex(t *testing.T, es *elastic.Engine) string {
	t.Helper()
	indices, err := es.AliasIndices(context.Background(), es.Alias())
	if err != nil || len(indices) != 1 {
		t.Fatalf("alias %s names %v, %v; want one index", es.Alias(), indices, err)
	}
	return indices[0]
}

// searchAllAlong searches for text on es until the returned function is called, failing the
// test on any error or empty result, and returns how many searches ran.
func searchAllAlong(t *testing.T, es *elastic.Engine, text string) func() int {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := es.Search(context.Background(), model.SearchQuery{Text: text})
			if err != nil || res.Total == 0 {
				t.Errorf("search %q during the synonym update: %v results, %v; want some, no error", text, res, err)
				return
			}
			n++
		}
	}()
	return func() int {
		close(stop)
		return <-done
	}
}

// TestIndexerCategoryRename: renaming a category rewrites the documents of its products
// (and of its descendants' products), whose versions did not change.
func TestIndexerCategoryRename(t *testing.T) {
	pool := searchtest.SeededPool(t, 300)
	ix, es := newTestIndexer(t, pool, search.DefaultConfig())
	ctx := context.Background()
	var catID string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM categories WHERE slug = 'loveseats'`).Scan(&catID); err != nil {
		t.Fatal(err)
	}
	mark := lastOutboxID(t, pool)
	name := "Chesterfields"
	searchtest.RenameCategory(t, pool, catID, name)
	mustHandle(t, ix, outboxAfter(t, pool, mark))
	refreshAlias(t, es)
	res, err := es.Search(ctx, model.SearchQuery{Filter: model.SearchFilter{CategoryIDs: []string{catID}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total == 0 {
		t.Fatal("no products under the renamed category")
	}
	for _, f := range res.Facets {
		if f.Key != model.FacetCategory {
			continue
		}
		for _, v := range f.Values {
			if v.Value == catID && v.Label != name {
				t.Errorf("category facet labels %s %q; want %q", catID, v.Label, name)
			}
		}
	}
	byName, err := es.Search(ctx, model.SearchQuery{Text: "chesterfields"})
	if err != nil {
		t.Fatal(err)
	}
	if byName.Total != res.Total {
		t.Errorf("searching the new name finds %d products; want the category's %d", byName.Total, res.Total)
	}
	assertInSync(t, ix)
}

// TestIndexerLag: the lag hook hears of every event applied.
func TestIndexerLag(t *testing.T) {
	pool := searchtest.SeededPool(t, 50)
	ix, _ := newTestIndexer(t, pool, search.DefaultConfig())
	var mu sync.Mutex
	var lags []time.Duration
	ix.opts.ObserveLag = func(kind string, lag time.Duration) {
		mu.Lock()
		lags = append(lags, lag)
		mu.Unlock()
	}
	mark := lastOutboxID(t, pool)
	searchtest.Reprice(t, pool, activeProducts(t, pool, 3), 100)
	mustHandle(t, ix, outboxAfter(t, pool, mark))
	if len(lags) != 3 {
		t.Fatalf("lag observed %d times; want 3", len(lags))
	}
	for _, l := range lags {
		if l <= 0 || l > time.Minute {
			t.Errorf("lag %s; want a small positive duration", l)
		}
	}
}
