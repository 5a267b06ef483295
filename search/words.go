package search

import (
	"context"
	"slices"
	"sync"
	"time"
)

// MaxQueryWords bounds the distinct words of a query that an engine searches.
const MaxQueryWords = 32

// QueryWords returns the first MaxQueryWords distinct words of text, in order: repeating a
// word in an AND query changes nothing.
func QueryWords(text string) []string {
	var out []string
	for _, w := range Words(text) {
		if len(out) == MaxQueryWords {
			break
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}

const (
	// WordsTTL is how long what an index says of a word is reused: new products add words
	// rarely, and a stale answer only misses a typo correction.
	WordsTTL = 5 * time.Second
	// maxWordsCached bounds the words a WordCache remembers; past it, it starts afresh.
	maxWordsCached = 10_000
)

// WordCache remembers what an engine's index says of query words (A: whether it knows a
// word, and its corrections) for WordsTTL, so that the words of a search are asked about
// once, not on every search. The zero value is ready to use.
type WordCache[A any] struct {
	mu    sync.Mutex
	words map[string]rememberedWord[A]
	gen   uint64 // bumped by every Forget
}

type rememberedWord[A any] struct {
	answer A
	at     time.Time
}

// Lookup returns what the index says of each word, calling ask only about the words it
// does not remember. A word ask leaves out gets the zero A.
func (c *WordCache[A]) Lookup(ctx context.Context, words []string, ask func(context.Context, []string) (map[string]A, error)) (map[string]A, error) {
	now := time.Now()
	out, missing, gen := c.recall(words, now)
	if len(missing) == 0 {
		return out, nil
	}
	answers, err := ask(ctx, missing)
	if err != nil {
		return nil, err
	}
	for _, w := range missing {
		out[w] = answers[w]
	}
	c.remember(gen, missing, out, now)
	return out, nil
}

// recall returns the answers it remembers from before WordsTTL, the other words, and the
// generation the answers to those must be of to be remembered.
func (c *WordCache[A]) recall(words []string, now time.Time) (map[string]A, []string, uint64) {
	out := make(map[string]A, len(words))
	var missing []string
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range words {
		if got, ok := c.words[w]; ok && now.Sub(got.at) < WordsTTL {
			out[w] = got.answer
		} else {
			missing = append(missing, w)
		}
	}
	return out, missing, c.gen
}

// remember keeps the answers unless Forget ran since gen was taken: they may have been
// asked before the change that made it forget, and kept, they would outlive it by WordsTTL
// (and a result computed from them would be cached for longer).
func (c *WordCache[A]) remember(gen uint64, words []string, answers map[string]A, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.words == nil || len(c.words)+len(words) > maxWordsCached {
		c.words = make(map[string]rememberedWord[A], len(words))
	}
	for _, w := range words {
		c.words[w] = rememberedWord[A]{answers[w], at}
	}
}

// Forget drops every answer, after a change that can make unknown words known.
func (c *WordCache[A]) Forget() {
	c.mu.Lock()
	c.words = nil
	c.gen++
	c.mu.Unlock()
}
