package search

import (
	"context"
	"testing"
)

// An answer asked before a Forget serves the search that asked, but is not remembered: the
// change that made the cache forget may have made the word known.
func TestWordCacheKeepsNoAnswerAskedBeforeForget(t *testing.T) {
	var c WordCache[string]
	asks := 0
	lookup := func(indexSays string, meanwhile func()) string {
		t.Helper()
		got, err := c.Lookup(context.Background(), []string{"quokka"}, func(context.Context, []string) (map[string]string, error) {
			asks++
			meanwhile()
			return map[string]string{"quokka": indexSays}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got["quokka"]
	}
	// A product named quokka becomes visible while the index is asked.
	if got := lookup("unknown", c.Forget); got != "unknown" || asks != 1 {
		t.Fatalf("first lookup: %q after %d asks; want unknown after 1", got, asks)
	}
	if got := lookup("known", func() {}); got != "known" || asks != 2 {
		t.Fatalf("lookup after the change: %q after %d asks; want known after 2 (the stale answer was kept)", got, asks)
	}
	if got := lookup("asked again", func() {}); got != "known" || asks != 2 {
		t.Fatalf("third lookup: %q after %d asks; want the remembered known after 2", got, asks)
	}
}
