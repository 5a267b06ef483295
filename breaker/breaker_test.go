package breaker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/homegoods/storefront/breaker"
)

var errDown = errors.New("down")

// The breaker opens after Failures failures in a row, not counting harmless errors or calls
// whose caller gave up, and its probe after the cool-down closes it.
func TestBreakerCountsOnlyTheDependencysFailures(t *testing.T) {
	now := time.Now()
	harmless := errors.New("bad input")
	b := breaker.New(breaker.Options{Failures: 2, CoolDown: time.Second, Now: func() time.Time { return now },
		Harmless: func(err error) bool { return errors.Is(err, harmless) }})
	fail := func(err error) func(context.Context) error { return func(context.Context) error { return err } }
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()

	_ = b.Do(ctx, fail(errDown))
	_ = b.Do(ctx, fail(harmless)) // a success: the count starts again
	_ = b.Do(ctx, fail(errDown))
	_ = b.Do(canceled, fail(context.Canceled)) // the caller's own: not counted
	if got := b.State(); got != breaker.Closed {
		t.Fatalf("after failures separated by a harmless error: %v; want closed", got)
	}
	_ = b.Do(ctx, fail(errDown))
	if got := b.State(); got != breaker.Open {
		t.Fatalf("after two failures in a row: %v; want open", got)
	}
	if err := b.Do(ctx, fail(nil)); !errors.Is(err, breaker.ErrOpen) {
		t.Fatalf("call while open: %v; want ErrOpen", err)
	}
	now = now.Add(time.Second)
	if err := b.Do(ctx, fail(nil)); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got, opens, probes := b.State(), b.Opens(), b.Probes(); got != breaker.Closed || opens != 1 || probes != 1 {
		t.Fatalf("after the probe: %v, %d opens, %d probes; want closed, 1, 1", got, opens, probes)
	}
}

// Without a Timeout a call keeps its caller's deadline only; with one it gets that bound.
func TestBreakerTimeout(t *testing.T) {
	ctx := context.Background()
	if err := breaker.New(breaker.Options{}).Do(ctx, func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); ok {
			return errors.New("a deadline was set")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := breaker.New(breaker.Options{Timeout: time.Millisecond}).Do(ctx, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its timeout: %v; want context.DeadlineExceeded", err)
	}
}
