package relevance

import (
	"slices"

	"github.com/homegoods/storefront/graph/model"
	"github.com/homegoods/storefront/search"
)

// SynonymSet finds synonym terms in the words of queries.
type SynonymSet struct {
	byFirst map[string][]synonymEntry // by the first word of the term
	single  []string                  // one-word terms, candidates for typo correction
}

// synonymEntry is one term of a rule and what it also finds.
type synonymEntry struct {
	words []string
	alts  []string
}

// NoSynonyms is the set without rules.
var NoSynonyms = NewSynonymSet(nil)

// NewSynonymSet indexes the terms of rules.
func NewSynonymSet(rules []*model.SynonymRule) *SynonymSet {
	s := &SynonymSet{byFirst: map[string][]synonymEntry{}}
	add := func(term string, alts []string) {
		words := search.Words(term)
		if len(words) == 0 {
			return
		}
		s.byFirst[words[0]] = append(s.byFirst[words[0]], synonymEntry{words: words, alts: alts})
		if len(words) == 1 && !slices.Contains(s.single, words[0]) {
			s.single = append(s.single, words[0])
		}
	}
	for _, r := range rules {
		for _, t := range r.Terms {
			if r.Kind == model.SynonymEquivalent {
				add(t, slices.DeleteFunc(slices.Clone(r.Terms), func(o string) bool { return o == t }))
			} else {
				add(t, r.Synonyms)
			}
		}
	}
	return s
}

// SynonymSpan is a run of n query words that is a synonym term, and what it also finds.
type SynonymSpan struct {
	N    int
	Alts []string
}

// Spans finds, left to right, the longest synonym term at each position, by the index of
// its first word. Rules sharing that term all contribute their alternatives.
func (s *SynonymSet) Spans(words []string) map[int]SynonymSpan {
	out := map[int]SynonymSpan{}
	for i := 0; i < len(words); {
		var best SynonymSpan
		for _, e := range s.byFirst[words[i]] {
			n := len(e.words)
			if i+n > len(words) || !slices.Equal(words[i:i+n], e.words) || n < best.N {
				continue
			}
			if n > best.N {
				best = SynonymSpan{N: n}
			}
			for _, a := range e.alts {
				if !slices.Contains(best.Alts, a) {
					best.Alts = append(best.Alts, a)
				}
			}
		}
		if best.N == 0 {
			i++
			continue
		}
		out[i] = best
		i += best.N
	}
	return out
}

// AlternativesOf returns what a one-word term also finds.
func (s *SynonymSet) AlternativesOf(word string) []string {
	var out []string
	for _, e := range s.byFirst[word] {
		if len(e.words) == 1 {
			out = append(out, e.alts...)
		}
	}
	return out
}

// SingleWordTerms are the one-word terms, candidates for typo correction.
func (s *SynonymSet) SingleWordTerms() []string { return s.single }
