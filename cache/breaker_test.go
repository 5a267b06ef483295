package cache

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// brkBackend is a memory backend whose Get can be made to fail or to hang, to drive the
// breaker through its states; the Redis outage itself is tested on a real server in
// TestReadThroughRedisOutage.
type brkBackend struct {
	*MemoryBackend
	mu      sync.Mutex
	err     error         // returned by Get when set
	hang    chan struct{} // when set, Get waits for it to close or for ctx to end
	calls   int
	entered chan struct{} // signalled when a Get starts
}

func brkNewBackend() *brkBackend {
	return &brkBackend{MemoryBackend: NewMemoryBackend(0), entered: make(chan struct{}, 100)}
}

func (b *brkBackend) Get(ctx context.Context, keys []string) ([][]byte, error) {
	b.mu.Lock()
	b.calls++
	err, hang := b.err, b.hang
	b.mu.Unlock()
	b.entered <- struct{}{}
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return b.MemoryBackend.Get(ctx, keys)
}

func (b *brkBackend) set(err error, hang chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err, b.hang = err, hang
}

func (b *brkBackend) callCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

func brkNew(t *testing.T, backend Backend, opts BreakerOptions) (*Breaker, *rtFakeTime) {
	t.Helper()
	clock := &rtFakeTime{now: time.Now()}
	b := NewBreaker(backend, opts, coreLogger(t))
	b.now = clock.Now
	return b, clock
}

func brkGet(b *Breaker) error {
	_, err := b.Get(context.Background(), []string{"k"})
	return err
}

func brkWantState(t *testing.T, b *Breaker, want BreakerState, opens, probes uint64) {
	t.Helper()
	if b.State() != want || b.Opens() != opens || b.Probes() != probes {
		t.Errorf("state, opens, probes: got %v, %d, %d; want %v, %d, %d", b.State(), b.Opens(), b.Probes(), want, opens, probes)
	}
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	backend := brkNewBackend()
	b, clock := brkNew(t, backend, BreakerOptions{Failures: 3, CoolDown: time.Second})
	down := errors.New("connection refused")

	backend.set(down, nil)
	brkGet(b)
	brkGet(b)
	backend.set(nil, nil)
	brkGet(b) // a success resets the count of consecutive failures
	backend.set(down, nil)
	brkGet(b)
	brkGet(b)
	brkWantState(t, b, BreakerClosed, 0, 0)
	brkGet(b)
	brkWantState(t, b, BreakerOpen, 1, 0)

	calls := backend.callCount()
	if err := brkGet(b); !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("call while open: got %v; want ErrBreakerOpen", err)
	}
	if got := backend.callCount(); got != calls {
		t.Errorf("backend calls while open: got %d more; want none", got-calls)
	}

	clock.Add(time.Second)
	if err := brkGet(b); !errors.Is(err, down) {
		t.Errorf("failing probe: got %v; want %v", err, down)
	}
	brkWantState(t, b, BreakerOpen, 2, 1)
	if err := brkGet(b); !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("call after a failed probe: got %v; want ErrBreakerOpen", err)
	}

	clock.Add(time.Second)
	backend.set(nil, nil)
	if err := brkGet(b); err != nil {
		t.Errorf("succeeding probe: got %v; want nil", err)
	}
	brkWantState(t, b, BreakerClosed, 2, 2)
}

func TestBreakerOneProbeAtATime(t *testing.T) {
	backend := brkNewBackend()
	b, clock := brkNew(t, backend, BreakerOptions{Failures: 1, CoolDown: time.Second, Timeout: time.Minute})
	backend.set(errors.New("down"), nil)
	brkGet(b)
	brkWantState(t, b, BreakerOpen, 1, 0)

	clock.Add(time.Second)
	release := make(chan struct{})
	backend.set(nil, release)
	<-backend.entered // drain the failed call's signal
	probed := make(chan error)
	go func() { probed <- brkGet(b) }()
	<-backend.entered
	if err := brkGet(b); !errors.Is(err, ErrBreakerOpen) {
		t.Errorf("call during the probe: got %v; want ErrBreakerOpen", err)
	}
	close(release)
	if err := <-probed; err != nil {
		t.Errorf("probe: got %v; want nil", err)
	}
	brkWantState(t, b, BreakerClosed, 1, 1)
}

func TestBreakerTimeoutCountsAsFailure(t *testing.T) {
	backend := brkNewBackend()
	backend.set(nil, make(chan struct{})) // hangs
	b, _ := brkNew(t, backend, BreakerOptions{Failures: 2, Timeout: 5 * time.Millisecond})
	for range 2 {
		if err := brkGet(b); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("hanging call: got %v; want a deadline error", err)
		}
	}
	brkWantState(t, b, BreakerOpen, 1, 0)
}

func TestBreakerIgnoresCallersGivingUp(t *testing.T) {
	backend := brkNewBackend()
	backend.set(nil, make(chan struct{})) // hangs
	b, _ := brkNew(t, backend, BreakerOptions{Failures: 1, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 3 {
		if _, err := b.Get(ctx, []string{"k"}); !errors.Is(err, context.Canceled) {
			t.Errorf("call with a canceled context: got %v; want context.Canceled", err)
		}
	}
	brkWantState(t, b, BreakerClosed, 0, 0)
}

// TestBreakerLogsStateChanges checks that every change of state is logged.
func TestBreakerLogsStateChanges(t *testing.T) {
	backend := brkNewBackend()
	var logs brkLogRecorder
	b := NewBreaker(backend, BreakerOptions{Failures: 1, CoolDown: time.Second}, slog.New(&logs))
	clock := &rtFakeTime{now: time.Now()}
	b.now = clock.Now
	backend.set(errors.New("down"), nil)
	brkGet(b)
	clock.Add(time.Second)
	backend.set(nil, nil)
	brkGet(b)
	want := []string{
		"cache: circuit breaker open, reads go to the database",
		"cache: circuit breaker half-open, probing the backend",
		"cache: circuit breaker closed, backend is back",
	}
	if got := logs.messages(); len(got) != len(want) {
		t.Fatalf("logged: got %q; want %q", got, want)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("log line %d: got %q; want %q", i, got[i], want[i])
			}
		}
	}
}

type brkLogRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *brkLogRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *brkLogRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}

func (r *brkLogRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }

func (r *brkLogRecorder) WithGroup(string) slog.Handler { return r }

func (r *brkLogRecorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}
