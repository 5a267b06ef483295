package model

import "testing"

func TestStockAlert(t *testing.T) {
	for _, c := range []struct {
		before, after, threshold int
		want                     AlertKind
		ok                       bool
	}{
		{10, 0, 5, AlertOutOfStock, true},
		{3, 0, 5, AlertOutOfStock, true},
		{0, 4, 5, AlertBackInStock, true},
		{0, 40, 5, AlertBackInStock, true},
		{10, 5, 5, AlertLowStock, true},
		{6, 1, 5, AlertLowStock, true},
		{10, 6, 5, "", false}, // still above the threshold
		{5, 3, 5, "", false},  // was low already
		{3, 8, 5, "", false},  // restocked above it
		{0, 0, 5, "", false},  // stays out
		{7, 7, 5, "", false},  // no change
		{1, 0, 0, AlertOutOfStock, true},
		{2, 1, 0, "", false}, // threshold 0: never low, only out
		{5, 0, 0, AlertOutOfStock, true},
	} {
		got, ok := StockAlert(c.before, c.after, c.threshold)
		if got != c.want || ok != c.ok {
			t.Errorf("StockAlert(%d, %d, %d) = %q, %v; want %q, %v", c.before, c.after, c.threshold, got, ok, c.want, c.ok)
		}
	}
}
