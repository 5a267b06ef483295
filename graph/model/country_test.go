package model

import (
	"strings"
	"testing"
)

func TestIsCountryCode(t *testing.T) {
	if n := len(strings.Fields(countryCodes)); n != 249 {
		t.Errorf("got %d codes; want the 249 of ISO 3166-1", n)
	}
	for _, c := range []string{"US", "DE", "GB", "AD", "ZW", "CW", "SS"} {
		if !IsCountryCode(c) {
			t.Errorf("%s: refused; want accepted", c)
		}
	}
	for _, c := range []string{"XX", "UK", "EU", "ZZ", "us", "U", "USA", "D ", " A", "DJ ", "EC EE"} {
		if IsCountryCode(c) {
			t.Errorf("%q: accepted; want refused", c)
		}
	}
}
