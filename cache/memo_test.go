package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memoCounter computes answers of the form "<key>#<n>", n counting the computations.
type memoCounter struct{ n atomic.Int64 }

func (c *memoCounter) compute(key string, keep bool) func(context.Context) (string, bool, error) {
	return func(context.Context) (string, bool, error) {
		return key + "#" + string(rune('0'+c.n.Add(1))), keep, nil
	}
}

// TestMemoKeepsAnswersUntilACatalogChange: two instances on one backend each keep their
// answers; a change announced by either empties both; an answer computed across a change
// is not kept, nor one its computation says to drop, nor any after the TTL.
func TestMemoKeepsAnswersUntilACatalogChange(t *testing.T) {
	ctx := context.Background()
	backend := NewMemoryBackend(0)
	busA, busB := coreStartBus(t, backend), coreStartBus(t, backend)
	a, b := NewMemo[string](busA, 10, time.Minute), NewMemo[string](busB, 10, time.Minute)
	var ca, cb memoCounter

	mustDo := func(m *Memo[string], key string, compute func(context.Context) (string, bool, error), want string) {
		t.Helper()
		got, err := m.Do(ctx, key, compute)
		if err != nil || got != want {
			t.Fatalf("Do(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	mustDo(a, "sofa", ca.compute("sofa", true), "sofa#1")
	mustDo(a, "sofa", ca.compute("sofa", true), "sofa#1")
	mustDo(b, "sofa", cb.compute("sofa", true), "sofa#1")

	if err := busA.Announce(ctx); err != nil {
		t.Fatal(err)
	}
	mustDo(a, "sofa", ca.compute("sofa", true), "sofa#2") // emptied at once where announced
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := b.Do(ctx, "sofa", cb.compute("sofa", true))
		if err != nil {
			t.Fatal(err)
		}
		if got != "sofa#1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other instance still answers from before the change 5s later")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A change during a computation: its answer is returned but not kept.
	mustDo(a, "lamp", func(context.Context) (string, bool, error) {
		if err := busA.Announce(ctx); err != nil {
			t.Fatal(err)
		}
		return "lamp#old", true, nil
	}, "lamp#old")
	mustDo(a, "lamp", ca.compute("lamp", true), "lamp#3")
	// An answer its computation will not have kept, and errors, are asked for again.
	mustDo(a, "rug", ca.compute("rug", false), "rug#4")
	mustDo(a, "rug", ca.compute("rug", true), "rug#5")
	if _, err := a.Do(ctx, "vase", func(context.Context) (string, bool, error) { return "", true, errors.New("down") }); err == nil {
		t.Fatal("a failed computation: no error; want it")
	}
	mustDo(a, "vase", ca.compute("vase", true), "vase#6")

	short := NewMemo[string](busA, 10, 20*time.Millisecond)
	mustDo(short, "mat", ca.compute("mat", true), "mat#7")
	time.Sleep(40 * time.Millisecond)
	mustDo(short, "mat", ca.compute("mat", true), "mat#8")
}

// TestMemoSharesOneComputationPerKey: concurrent misses of a key compute it once.
func TestMemoSharesOneComputationPerKey(t *testing.T) {
	m := NewMemo[string](coreStartBus(t, NewMemoryBackend(0)), 10, time.Minute)
	var computed atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			got, err := m.Do(context.Background(), "sofa", func(context.Context) (string, bool, error) {
				computed.Add(1)
				<-release
				return "answer", true, nil
			})
			if err != nil || got != "answer" {
				t.Errorf("Do = %q, %v; want answer", got, err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let every caller join the flight
	close(release)
	wg.Wait()
	if n := computed.Load(); n != 1 {
		t.Errorf("computations for 20 concurrent callers: %d; want 1", n)
	}
}

// TestMemoCachesNothingWhileTheBusIsDown: without a subscription a change could be missed.
func TestMemoCachesNothingWhileTheBusIsDown(t *testing.T) {
	m := NewMemo[string](NewBus(NewMemoryBackend(0), coreLogger(t)), 10, time.Minute) // never run
	var c memoCounter
	for _, want := range []string{"sofa#1", "sofa#2"} {
		if got, err := m.Do(context.Background(), "sofa", c.compute("sofa", true)); err != nil || got != want {
			t.Fatalf("Do = %q, %v; want %q", got, err, want)
		}
	}
}
