package model

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Cents is an exact amount of money in minor units. In GraphQL it is the Decimal scalar, a
// string such as "129.99", so that no client ever parses money as a float.
type Cents int64

// String formats c with two decimals.
func (c Cents) String() string {
	sign := ""
	v := int64(c)
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// ParseCents reads a decimal amount with at most two fractional digits.
func ParseCents(s string) (Cents, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" || len(frac) > 2 || strings.HasPrefix(whole, "+") {
		return 0, fmt.Errorf("%q is not a decimal amount with at most two decimals", s)
	}
	frac += strings.Repeat("0", 2-len(frac))
	w, err1 := strconv.ParseUint(whole, 10, 63)
	f, err2 := strconv.ParseUint(frac, 10, 8)
	if err1 != nil || err2 != nil || w > (1<<62)/100 {
		return 0, fmt.Errorf("%q is not a decimal amount with at most two decimals", s)
	}
	v := int64(w)*100 + int64(f)
	if neg {
		v = -v
	}
	return Cents(v), nil
}

// MarshalGQL writes c as a JSON string.
func (c Cents) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(c.String()))
}

// UnmarshalGQL accepts a decimal string, or a number literal read as its decimal text.
func (c *Cents) UnmarshalGQL(v any) error {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case int64:
		s = strconv.FormatInt(v, 10)
	case int:
		s = strconv.Itoa(v)
	case json.Number:
		s = v.String()
	case float64:
		// The shortest text that reads back as v: 5.5 stays "5.5", and a value with more
		// than two decimals is refused below rather than rounded.
		s = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return &Error{Code: CodeBadUserInput, Message: fmt.Sprintf("a Decimal must be a string such as \"129.99\", not %T", v)}
	}
	parsed, err := ParseCents(s)
	if err != nil {
		return &Error{Code: CodeBadUserInput, Message: err.Error()}
	}
	*c = parsed
	return nil
}

// Money is an amount in a currency.
type Money struct {
	Amount   Cents
	Currency string
}
