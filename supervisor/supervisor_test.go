package supervisor_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/homegoods/storefront/supervisor"
)

func fastGroup(ctx context.Context, restarts *atomic.Int32) *supervisor.Group {
	return supervisor.New(ctx, supervisor.Options{MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		OnRestart: func(string) { restarts.Add(1) }})
}

func TestFailingAndPanickingWorkersAreRestarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var restarts, runs atomic.Int32
	g := fastGroup(ctx, &restarts)
	done := make(chan struct{})
	g.Go("flaky", func(ctx context.Context) error {
		switch runs.Add(1) {
		case 1:
			return errors.New("lost the connection")
		case 2:
			panic("nil map")
		case 3:
			close(done)
		}
		<-ctx.Done()
		return ctx.Err()
	})
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker ran %d times in 10s; want a third run after an error and a panic", runs.Load())
	}
	cancel()
	g.Wait()
	if got := restarts.Load(); got != 2 {
		t.Errorf("restarts = %d; want 2", got)
	}
	if got := runs.Load(); got != 3 {
		t.Errorf("runs = %d; want 3 (no restart after the context ended)", got)
	}
}

func TestWorkerReturningNilIsNotRestarted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var restarts, runs atomic.Int32
	g := fastGroup(ctx, &restarts)
	g.Go("one-shot", func(context.Context) error { runs.Add(1); return nil })
	g.Wait()
	if runs.Load() != 1 || restarts.Load() != 0 {
		t.Errorf("runs = %d, restarts = %d; want 1 and 0", runs.Load(), restarts.Load())
	}
}

func TestWaitReturnsOnceEveryWorkerStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var restarts atomic.Int32
	g := fastGroup(ctx, &restarts)
	var stopped atomic.Int32
	for range 5 {
		g.Go("w", func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // cleaning up
			stopped.Add(1)
			return ctx.Err()
		})
	}
	// A worker waiting out its backoff stops at once too.
	g.Go("failing", func(context.Context) error { return errors.New("down") })
	cancel()
	g.Wait()
	if got := stopped.Load(); got != 5 {
		t.Errorf("Wait returned with %d of 5 workers stopped", got)
	}
}
