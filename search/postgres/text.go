package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/homegoods/storefront/search"
	"github.com/homegoods/storefront/search/relevance"
	"github.com/jackc/pgx/v5"
)

// How the PostgreSQL engine reads the words of a query:
//
//  1. The text is split into words: maximal runs of letters and digits, lowercase (at most
//     search.MaxQueryWords distinct words are searched). A query without words browses.
//  2. Synonyms: from left to right, the longest run of words that is a term of a synonym
//     rule becomes one unit, matched by the words themselves or by any of the rule's other
//     terms (EQUIVALENT) or synonyms (ONE_WAY), each as a phrase.
//  3. Every other word is one unit. A stop word ("the") is dropped. A word whose English
//     stem occurs in the catalog's vocabulary (search_words) is matched as it is. An
//     unknown word of 3 letters or more is replaced by the vocabulary words (and one-word
//     synonym terms) nearest to it by edit distance (Damerau-Levenshtein, optimal string
//     alignment), within Elasticsearch's AUTO fuzziness: 1 edit for 3 to 5 letters, 2 from
//     6; only the nearest distance found is kept, at most maxCorrections words, ties in
//     trigram-similarity order. A correction that is a synonym term brings its synonyms.
//  4. A product matches when every unit matches its stemmed English tsvector (name,
//     brand, category, description), which search_tsquery builds from the units in SQL:
//     the text never reaches a tsquery parser.
const (
	maxCorrections = 5
	// nearestWords is how many trigram-nearest vocabulary words are checked for edit distance.
	nearestWords = 40
)

// tsAlt is one alternative of a unit: words matched anywhere (Phrase false) or as a phrase.
type tsAlt struct {
	T      string `json:"t"`
	Phrase bool   `json:"phrase"`
}

// tsUnit matches when any of its alternatives does.
type tsUnit []tsAlt

// wordInfo is what the vocabulary says of a query word.
type wordInfo struct {
	stop    bool     // no lexeme: never matched
	known   bool     // its stem occurs in the catalog
	nearest []string // trigram-nearest vocabulary words, when unknown
}

// textUnits reads the words of text into tsquery units; nil when text has no words.
func (e *Engine) textUnits(ctx context.Context, text string) ([]tsUnit, error) {
	words := search.QueryWords(text)
	if len(words) == 0 {
		return nil, nil
	}
	syn := relevance.NoSynonyms
	if e.controls != nil {
		var err error
		if syn, err = e.controls.SynonymSet(ctx); err != nil {
			return nil, err
		}
	}
	spans := syn.Spans(words)
	info, err := e.words.Lookup(ctx, unspannedWords(words, spans), e.askWords)
	if err != nil {
		return nil, err
	}
	units := make([]tsUnit, 0, len(words))
	for i := 0; i < len(words); {
		if sp, ok := spans[i]; ok {
			units = append(units, spanUnit(words[i:i+sp.N], sp.Alts))
			i += sp.N
			continue
		}
		if u := wordUnit(words[i], info[words[i]], syn); u != nil {
			units = append(units, u)
		}
		i++
	}
	return units, nil
}

// unspannedWords returns the words that no synonym span covers.
func unspannedWords(words []string, spans map[int]relevance.SynonymSpan) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		if sp, ok := spans[i]; ok {
			i += sp.N - 1
			continue
		}
		out = append(out, words[i])
	}
	return out
}

// spanUnit matches the span's own words (anywhere, all of them) or any synonym as a phrase.
func spanUnit(words []string, alts []string) tsUnit {
	u := tsUnit{{T: strings.Join(words, " ")}}
	for _, a := range alts {
		u = append(u, tsAlt{T: a, Phrase: true})
	}
	return u
}

// wordUnit is the unit of a word outside synonym spans; nil for a stop word.
func wordUnit(word string, info wordInfo, syn *relevance.SynonymSet) tsUnit {
	if info.stop {
		return nil
	}
	if info.known || !hasLettersOnly(word) {
		return tsUnit{{T: word}} // numbers and codes ("3x5") are never corrected
	}
	fixes := corrections(word, info.nearest, syn.SingleWordTerms())
	if len(fixes) == 0 {
		return tsUnit{{T: word}} // matches nothing: an AND query then finds nothing, as it should
	}
	var u tsUnit
	for _, f := range fixes {
		u = append(u, tsAlt{T: f})
		for _, a := range syn.AlternativesOf(f) {
			u = append(u, tsAlt{T: a, Phrase: true})
		}
	}
	return u
}

func hasLettersOnly(w string) bool {
	for _, r := range w {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

// corrections returns the candidates nearest to word by edit distance within the AUTO
// fuzziness, at most maxCorrections, in the candidates' order.
func corrections(word string, candidates ...[]string) []string {
	maxEdits := fuzziness(word)
	if maxEdits == 0 {
		return nil
	}
	best := maxEdits + 1
	var out []string
	for _, list := range candidates {
		for _, c := range list {
			d := editDistance(word, c, maxEdits)
			switch {
			case d > maxEdits || d > best || slices.Contains(out, c):
			case d < best:
				best, out = d, []string{c}
			default:
				out = append(out, c)
			}
		}
	}
	if len(out) > maxCorrections {
		out = out[:maxCorrections]
	}
	return out
}

// fuzziness is Elasticsearch's AUTO: no edit below 3 characters, 1 up to 5, then 2.
func fuzziness(word string) int {
	switch n := len([]rune(word)); {
	case n < 3:
		return 0
	case n < 6:
		return 1
	default:
		return 2
	}
}

// editDistance is the optimal string alignment distance of a and b (insertions,
// deletions, substitutions and transpositions of adjacent letters), or limit+1 when it
// is certainly above limit.
func editDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// resolveWordsSQL looks words up in the vocabulary: the English stem of each (none for a
// stop word), whether the catalog has it, and for an unknown word of letters the nearest
// vocabulary words by trigram distance (a KNN scan of the GiST index), whose edit distance
// the engine then checks.
const resolveWordsSQL = `
SELECT w.word, l.lexeme IS NULL AS stop, k.known,
       CASE WHEN NOT k.known AND w.word ~ '^[[:alpha:]]{3,30}$'
            THEN ARRAY(SELECT s.word FROM search_words s ORDER BY s.word <-> w.word, s.word LIMIT $2)
       END AS nearest
  FROM unnest($1::text[]) AS w(word)
 CROSS JOIN LATERAL (SELECT (tsvector_to_array(to_tsvector('english', w.word)))[1] AS lexeme) l
 CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM search_words s WHERE s.lexeme = l.lexeme) AS known) k`

// askWords looks words up in the vocabulary.
func (e *Engine) askWords(ctx context.Context, words []string) (map[string]wordInfo, error) {
	rows, err := e.pool.Query(ctx, resolveWordsSQL, words, nearestWords)
	if err != nil {
		return nil, fmt.Errorf("look up query words: %w", err)
	}
	out := make(map[string]wordInfo, len(words))
	var word string
	var info wordInfo
	_, err = pgx.ForEachRow(rows, []any{&word, &info.stop, &info.known, &info.nearest}, func() error {
		out[word] = info
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up query words: %w", err)
	}
	return out, nil
}

// unitsJSON is the argument of search_tsquery.
func unitsJSON(units []tsUnit) string {
	if units == nil {
		units = []tsUnit{}
	}
	b, _ := json.Marshal(units) // strings and booleans always marshal
	return string(b)
}
