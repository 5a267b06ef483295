package model

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCentsRoundTrip(t *testing.T) {
	for _, c := range []struct {
		in   any
		want Cents
		ok   bool
	}{
		{"129.99", 12999, true}, {"5", 500, true}, {"5.5", 550, true}, {"0.05", 5, true}, {"-3.10", -310, true},
		{json.Number("19.9"), 1990, true}, {int64(7), 700, true}, {12.25, 1225, true},
		{"5.001", 0, false}, {"abc", 0, false}, {"", 0, false}, {".5", 0, false}, {"+5", 0, false}, {"1e3", 0, false},
		{12.345, 0, false}, {"99999999999999999999", 0, false}, {true, 0, false},
	} {
		var got Cents
		err := got.UnmarshalGQL(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("UnmarshalGQL(%#v): got %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && ErrorCodeOf(err) != CodeBadUserInput {
			t.Errorf("UnmarshalGQL(%#v): got code %s; want BAD_USER_INPUT", c.in, ErrorCodeOf(err))
		}
	}
	var b strings.Builder
	Cents(-1205).MarshalGQL(&b)
	if b.String() != `"-12.05"` {
		t.Errorf("MarshalGQL(-1205): got %s; want \"-12.05\"", b.String())
	}
}

func TestSlugify(t *testing.T) {
	for in, want := range map[string]string{
		"Oak Dining Table":   "oak-dining-table",
		"  Hartwell & Co. ":  "hartwell-co",
		"Café--Lamp 2000":    "caf-lamp-2000",
		"Walnut Desk WD-100": "walnut-desk-wd-100",
		"!!!":                "",
	} {
		if got := Slugify(in); got != want {
			t.Errorf("Slugify(%q): got %q; want %q", in, got, want)
		}
	}
}

func TestIsUUID(t *testing.T) {
	for in, want := range map[string]bool{
		"f093bc90-776c-46c9-8899-06269cb6818f": true,
		"F093BC90-776C-46C9-8899-06269CB6818F": true,
		"f093bc90776c46c9889906269cb6818f":     false,
		"f093bc90-776c-46c9-8899-06269cb6818g": false,
		"":                                     false,
	} {
		if got := IsUUID(in); got != want {
			t.Errorf("IsUUID(%q): got %v; want %v", in, got, want)
		}
	}
}

func TestAttributeChecks(t *testing.T) {
	good := map[string]any{"material": "oak", "width_cm": json.Number("120"), "dimmable": true}
	if err := CheckAttributes("input.attributes", good); err != nil {
		t.Errorf("valid attributes: got %v", err)
	}
	for name, attrs := range map[string]map[string]any{
		"nested object": {"size": map[string]any{"w": 1}},
		"list":          {"colors": []any{"red"}},
		"bad key":       {"Material": "oak"},
		"long text":     {"note": strings.Repeat("x", 201)},
	} {
		var me *Error
		err := CheckAttributes("input.attributes", attrs)
		if e, ok := err.(*Error); ok {
			me = e
		}
		if me == nil || me.Code != CodeBadUserInput || !strings.HasPrefix(me.Argument, "input.attributes.") {
			t.Errorf("%s: got %v; want BAD_USER_INPUT at input.attributes.<key>", name, err)
		}
	}
}
