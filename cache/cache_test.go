package cache

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/homegoods/storefront/cache/cachetest"
)

// coreBackend is one Backend implementation under test. open gives a namespace of the
// test's own and returns a function that makes backends on it: each call is one more
// "server" sharing the same store.
type coreBackend struct {
	name string
	open func(t *testing.T) func() Backend
}

func coreBackends() []coreBackend {
	return []coreBackend{
		{"memory", func(*testing.T) func() Backend {
			m := NewMemoryBackend(0)
			return func() Backend { return m }
		}},
		{"redis", func(t *testing.T) func() Backend {
			client, prefix := cachetest.Client(t)
			return func() Backend { return NewRedisBackend(client, prefix, nil) }
		}},
		{"cluster", func(t *testing.T) func() Backend {
			client, prefix := cachetest.ClusterClient(t)
			return func() Backend { return NewRedisBackend(client, prefix, nil) }
		}},
	}
}

// coreEachBackend runs test as a subtest on every backend.
func coreEachBackend(t *testing.T, test func(t *testing.T, newBackend func() Backend)) {
	t.Helper()
	for _, b := range coreBackends() {
		t.Run(b.name, func(t *testing.T) {
			test(t, b.open(t))
		})
	}
}

func coreLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// coreStartBus starts a Bus on backend, waits until it is subscribed and stops it when t
// ends.
func coreStartBus(t testing.TB, backend Backend) *Bus {
	t.Helper()
	bus := NewBus(backend, coreLogger(t))
	coreRun(t, bus.Run, bus.Live)
	return bus
}

// coreRun runs run in a goroutine and waits until live holds. The returned function, also
// called when t ends, cancels run's context and waits until it has returned.
func coreRun(t testing.TB, run func(context.Context) error, live func() bool) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = run(ctx)
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		<-done
	})
	t.Cleanup(stop)
	coreEventually(t, 10*time.Second, "the subscription", live)
	return stop
}

// coreEventually polls cond until it holds, failing t after timeout. The timeouts are
// generous: they only bound a wait for something that must happen.
func coreEventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func coreCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
