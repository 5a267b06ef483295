package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier is what reads need of a pool: both the primary's pool and a replica satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Reads sends the reads that may be slightly stale to streaming read replicas, and every
// other read to the primary.
//
// A replica serves reads only while it is in recovery, answers its probes and lags the
// primary by at most MaxLag. Lag is measured without trusting clocks: every probe records
// the primary's WAL position, and a replica's lag is the age of the newest recorded position
// it has replayed (0 once it has replayed the latest). A replica that fails a query is
// skipped at once and the query runs on the primary.
//
// Read-your-writes: a context marked with Primary always reads from the primary; the server
// marks mutations and merchandisers' requests, and the store reads carts, orders and checkout
// from the primary whatever the context.
type Reads struct {
	primary  *pgxpool.Pool
	replicas []*replica
	maxLag   time.Duration
	every    time.Duration
	log      *slog.Logger
	next     atomic.Uint32 // round robin among usable replicas

	mu      sync.Mutex
	history []walSample // the primary's WAL positions, oldest first
}

// replica is one read replica and what the last probe found.
type replica struct {
	name     string
	pool     *pgxpool.Pool
	usable   atomic.Bool
	replayed atomic.Int64 // WAL position replayed, as of the last probe
	lag      atomic.Int64 // nanoseconds, as of the last probe
	// fence is a WAL position the replica must have replayed before it serves reads again:
	// set by AwaitReplay when the replica did not catch up in time.
	fence atomic.Int64
}

type walSample struct {
	at  time.Time
	lsn int64
}

// ReadOptions tune Reads; zero values take the defaults.
type ReadOptions struct {
	// MaxLag is how far behind the primary a replica may be and still serve reads (default 1s).
	MaxLag time.Duration
	// Every is how often the primary and the replicas are probed (default MaxLag/4, between
	// 50ms and 1s).
	Every time.Duration
	Log   *slog.Logger
}

// NewReads routes reads over replicas, falling back to primary. Until Run has probed a
// replica, it serves nothing.
func NewReads(primary *pgxpool.Pool, replicas []*pgxpool.Pool, opts ReadOptions) *Reads {
	if opts.MaxLag <= 0 {
		opts.MaxLag = time.Second
	}
	if opts.Every <= 0 {
		opts.Every = min(max(opts.MaxLag/4, 50*time.Millisecond), time.Second)
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	r := &Reads{primary: primary, maxLag: opts.MaxLag, every: opts.Every, log: opts.Log}
	for _, p := range replicas {
		cc := p.Config().ConnConfig
		r.replicas = append(r.replicas, &replica{name: net.JoinHostPort(cc.Host, fmt.Sprint(cc.Port)), pool: p})
	}
	return r
}

type primaryKey struct{}

// Primary marks ctx so that every read made with it goes to the primary.
func Primary(ctx context.Context) context.Context {
	return context.WithValue(ctx, primaryKey{}, true)
}

func onPrimary(ctx context.Context) bool {
	b, _ := ctx.Value(primaryKey{}).(bool)
	return b
}

// For returns where a read that may be slightly stale should run: a usable replica, or the
// primary when ctx is marked with Primary or no replica is usable.
func (r *Reads) For(ctx context.Context) Querier {
	if r == nil {
		return nil
	}
	if len(r.replicas) == 0 || onPrimary(ctx) {
		return r.primary
	}
	n := len(r.replicas)
	start := int(r.next.Add(1))
	for i := range n {
		if rep := r.replicas[(start+i)%n]; rep.usable.Load() {
			return replicaQuerier{reads: r, rep: rep}
		}
	}
	return r.primary
}

// Replica is what a probe last found of one replica.
type Replica struct {
	Name   string
	Usable bool
	Lag    time.Duration
}

// Replicas reports the replicas' state, for metrics and readiness.
func (r *Reads) Replicas() []Replica {
	out := make([]Replica, len(r.replicas))
	for i, rep := range r.replicas {
		out[i] = Replica{Name: rep.name, Usable: rep.usable.Load(), Lag: time.Duration(rep.lag.Load())}
	}
	return out
}

// Run probes the primary and the replicas every Every until ctx ends.
func (r *Reads) Run(ctx context.Context) error {
	if len(r.replicas) == 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		r.probe(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// WAL positions as numbers. The primary's is where its next record will be inserted: with
// asynchronous commit, a committed transaction's records may not be written yet, and
// pg_current_wal_lsn() would not count them.
const (
	primaryLSNSQL = `SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint`
	replicaLSNSQL = `SELECT pg_is_in_recovery(), COALESCE((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)`
)

// probe records the primary's WAL position, then reads each replica's.
func (r *Reads) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, max(r.every, time.Second))
	defer cancel()
	var lsn int64
	if err := r.primary.QueryRow(pctx, primaryLSNSQL).Scan(&lsn); err != nil {
		// Without the primary's position no lag can be known: keep the last verdicts, which
		// the next probe corrects; a replica that fails a query is dropped meanwhile.
		r.log.Warn("replicas: primary WAL position unknown", "err", err)
		return
	}
	r.record(time.Now(), recordEnd(lsn))
	for _, rep := range r.replicas {
		r.probeReplica(pctx, rep)
	}
}

// record adds a sample of the primary's WAL position, keeping twice MaxLag of them.
func (r *Reads) record(at time.Time, lsn int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.history = append(r.history, walSample{at: at, lsn: lsn})
	keep := 0
	for keep < len(r.history)-1 && at.Sub(r.history[keep].at) > 2*r.maxLag {
		keep++
	}
	r.history = r.history[keep:]
}

// lagOf is how stale a replica that replayed up to lsn may be at now: 0 when it replayed the
// primary's latest recorded position, else the age of the newest position it replayed (or of
// the oldest recorded, when it replayed none of them).
func (r *Reads) lagOf(lsn int64, now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.history) == 0 {
		return 0
	}
	if lsn >= r.history[len(r.history)-1].lsn {
		return 0
	}
	for i := len(r.history) - 2; i >= 0; i-- {
		if r.history[i].lsn <= lsn {
			return now.Sub(r.history[i].at)
		}
	}
	return now.Sub(r.history[0].at)
}

func (r *Reads) probeReplica(ctx context.Context, rep *replica) {
	var recovering bool
	var lsn int64
	err := rep.pool.QueryRow(ctx, replicaLSNSQL).Scan(&recovering, &lsn)
	if err != nil {
		r.setUsable(rep, false, "probe failed", "err", err)
		return
	}
	if !recovering {
		r.setUsable(rep, false, "not a replica (promoted?)")
		return
	}
	rep.replayed.Store(lsn)
	lag := r.lagOf(lsn, time.Now())
	rep.lag.Store(int64(lag))
	switch {
	case lag > r.maxLag:
		r.setUsable(rep, false, "lags too far", "lag", lag, "max", r.maxLag)
	case lsn < rep.fence.Load():
		r.setUsable(rep, false, "has not replayed what the cache invalidated")
	default:
		r.setUsable(rep, true, "serves reads", "lag", lag)
	}
}

// setUsable records a replica's verdict and logs when it changes.
func (r *Reads) setUsable(rep *replica, usable bool, why string, attrs ...any) {
	if rep.usable.Swap(usable) == usable {
		return
	}
	attrs = append([]any{"replica", rep.name}, attrs...)
	if usable {
		r.log.Info("replicas: "+why, attrs...)
	} else {
		r.log.Warn("replicas: skipped: "+why, attrs...)
	}
}

// AwaitReplay returns once every usable replica has replayed what the primary has committed
// so far, waiting at most MaxLag; replicas that have not are skipped until they have. Call
// it before invalidating cached values, so that no fill after the invalidation reads what
// the change replaced.
func (r *Reads) AwaitReplay(ctx context.Context) error {
	if r == nil || len(r.replicas) == 0 {
		return nil
	}
	var lsn int64
	if err := r.primary.QueryRow(ctx, primaryLSNSQL).Scan(&lsn); err != nil {
		return fmt.Errorf("await replay: %w", err)
	}
	lsn = recordEnd(lsn)
	deadline := time.Now().Add(r.maxLag)
	for _, rep := range r.replicas {
		if !rep.usable.Load() || !r.awaitReplica(ctx, rep, lsn, deadline) {
			fenceAt(rep, lsn)
			if rep.usable.Load() && rep.replayed.Load() < lsn {
				r.setUsable(rep, false, "did not replay a change in time", "max", r.maxLag)
			}
		}
	}
	return ctx.Err()
}

// awaitReplica polls rep until it has replayed lsn (true) or deadline passes (false).
func (r *Reads) awaitReplica(ctx context.Context, rep *replica, lsn int64, deadline time.Time) bool {
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		if rep.replayed.Load() >= lsn {
			return true
		}
		qctx, cancel := context.WithDeadline(ctx, deadline)
		var recovering bool
		var replayed int64
		err := rep.pool.QueryRow(qctx, replicaLSNSQL).Scan(&recovering, &replayed)
		cancel()
		if err != nil || !recovering {
			return false
		}
		if replayed > rep.replayed.Load() {
			rep.replayed.Store(replayed)
		}
		if replayed >= lsn {
			return true
		}
		if time.Now().Add(wait).After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(wait)
	}
}

// walPage is the size of a WAL page (PostgreSQL's default XLOG_BLCKSZ), and walPageHeader the
// largest header a page starts with.
const walPage, walPageHeader = 8192, 40

// recordEnd turns an insert position into the end of the record before it, as replicas
// report it: when the position sits just past a page header, the record before it ended at
// the page's start (no record ends inside a page header).
func recordEnd(lsn int64) int64 {
	if off := lsn % walPage; off > 0 && off <= walPageHeader {
		return lsn - off
	}
	return lsn
}

// fenceAt raises rep's fence to lsn.
func fenceAt(rep *replica, lsn int64) {
	for {
		old := rep.fence.Load()
		if old >= lsn || rep.fence.CompareAndSwap(old, lsn) {
			return
		}
	}
}

// replicaQuerier runs reads on a replica, and on the primary when the replica fails them.
type replicaQuerier struct {
	reads *Reads
	rep   *replica
}

// Query runs on the replica; when the replica fails before the first row, on the primary.
func (q replicaQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	onPrimary := func(err error) (pgx.Rows, error) {
		q.reads.setUsable(q.rep, false, "a query failed", "err", err)
		return q.reads.primary.Query(ctx, sql, args...)
	}
	rows, err := q.rep.pool.Query(ctx, sql, args...)
	if err != nil {
		if !replicaFault(ctx, err) {
			return nil, err
		}
		return onPrimary(err)
	}
	return &fallbackRows{Rows: rows, ctx: ctx, retry: onPrimary}, nil
}

// fallbackRows are the rows of a replica's query that runs again on the primary when the
// replica fails before the first row: an idle connection of a replica that shut down, say,
// reports it only once the query is sent.
type fallbackRows struct {
	pgx.Rows
	ctx   context.Context
	retry func(error) (pgx.Rows, error) // nil once a row came or the query ran again
	err   error
}

func (r *fallbackRows) Next() bool {
	if r.Rows.Next() {
		r.retry = nil
		return true
	}
	err := r.Rows.Err()
	if r.retry == nil || err == nil || !replicaFault(r.ctx, err) {
		return false
	}
	retry := r.retry
	r.retry = nil
	r.Rows.Close()
	rows, err := retry(err)
	if err != nil {
		r.err = err
		return false
	}
	r.Rows = rows
	return r.Rows.Next()
}

func (r *fallbackRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}

func (q replicaQuerier) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := q.Query(ctx, sql, args...)
	return firstRow{rows: rows, err: err}
}

// firstRow is the first row of a query, as pgx.Row.
type firstRow struct {
	rows pgx.Rows
	err  error
}

func (r firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// replicaFault tells whether err is the replica's fault (it is down, shutting down, or
// cancelled the query for a conflict with recovery) rather than the query's or the caller's.
func replicaFault(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return true // no answer from the server: connection refused, reset, timed out
	}
	switch {
	case pgErr.Code == "57014": // a statement timeout: the query's, it would time out anywhere
		return false
	case pgErr.Code == "40001": // canceled for a conflict with recovery
		return true
	}
	switch pgErr.Code[:2] {
	case "08", "57", "58": // connection exception, shutting down, system error
		return true
	}
	return false
}
