package db

import (
	"testing"
	"time"
)

// A replica's lag is the age of the newest primary position it replayed, counted
// conservatively from the probes, and 0 once it replayed the latest.
func TestLagOfAReplica(t *testing.T) {
	r := NewReads(nil, nil, ReadOptions{MaxLag: time.Second})
	t0 := time.Unix(1000, 0)
	for i, lsn := range []int64{100, 200, 300, 400} {
		r.record(t0.Add(time.Duration(i)*250*time.Millisecond), lsn)
	}
	now := t0.Add(800 * time.Millisecond)
	for _, c := range []struct {
		replayed int64
		want     time.Duration
	}{
		{400, 0}, {450, 0}, // replayed the latest
		{399, 300 * time.Millisecond}, {300, 300 * time.Millisecond}, // 300 was the primary's at t0+500ms
		{250, 550 * time.Millisecond},
		{50, 800 * time.Millisecond}, // older than every sample: at least the oldest's age
	} {
		if got := r.lagOf(c.replayed, now); got != c.want {
			t.Errorf("lagOf(%d): got %s; want %s", c.replayed, got, c.want)
		}
	}
	// Samples older than twice the bound are dropped, the newest always kept.
	r.record(t0.Add(10*time.Second), 500)
	if len(r.history) != 1 || r.history[0].lsn != 500 {
		t.Errorf("history after a long gap: got %v; want the newest sample alone", r.history)
	}
}

// An insert position just past a page header stands for the end of the page before it.
func TestRecordEnd(t *testing.T) {
	for in, want := range map[int64]int64{
		8192*3 + 24:  8192 * 3,
		8192*3 + 40:  8192 * 3,
		8192*3 + 48:  8192*3 + 48,
		8192 * 3:     8192 * 3,
		8192*3 + 900: 8192*3 + 900,
	} {
		if got := recordEnd(in); got != want {
			t.Errorf("recordEnd(%d): got %d; want %d", in, got, want)
		}
	}
}
