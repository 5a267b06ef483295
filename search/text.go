package search

import (
	"strings"
	"unicode"
)

// Normalize is the key of a query in rules and insights: lowercase, words separated by
// single spaces.
func Normalize(text string) string {
	return strings.Join(strings.Fields(strings.ToLower(text)), " ")
}

// Words splits text into lowercase words: maximal runs of letters and digits.
func Words(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}
