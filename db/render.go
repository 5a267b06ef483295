package db

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"text/template"
)

// A migration file is rendered as a text/template before it runs, with the shared templates
// of migrations/*.tmpl, so that SQL written once per analytics rollup level (its table, its
// continuous aggregate, its rollup statement, its view) is written once for all of them: the
// template names the levels, the shared template holds their SQL. A file with no template
// action renders to itself.
//
// Rendering must never change what an applied migration did: a shared template that an
// applied migration uses is frozen like the migration itself. `storefront migrate -print
// FILE` prints the SQL a file renders to.

// SQL returns the statements of the migration file name of fsys, rendered.
func SQL(fsys fs.FS, name string) (string, error) {
	text, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", err
	}
	shared, err := fs.Glob(fsys, "migrations/*.tmpl")
	if err != nil {
		return "", err
	}
	t := template.New(name).Funcs(template.FuncMap{"level": newLevel, "family": family, "dims": dimSuffixes})
	if len(shared) > 0 {
		if t, err = t.ParseFS(fsys, shared...); err != nil {
			return "", fmt.Errorf("shared migration templates: %w", err)
		}
	}
	if t, err = t.New(name).Parse(string(text)); err != nil {
		return "", fmt.Errorf("migration %s: %w", name, err)
	}
	var out strings.Builder
	if err := t.Execute(&out, nil); err != nil {
		return "", fmt.Errorf("migration %s: %w", name, err)
	}
	return out.String(), nil
}

// Level is one analytics rollup level: a relation of partial sums per time bucket and per
// the dimensions it keeps, aggregated from a finer level or from the facts.
type Level struct {
	Name   string // "sales_hourly_by_brand"
	From   string // what it aggregates: "sales_facts" or another level's name
	grain  grain  // its bucket width
	source *grain // From's bucket width; nil for the facts
	dims   dimSet // the dimensions it keeps
}

// grain is a bucket width, as the names of the levels, the TimescaleDB intervals and the
// plain-PostgreSQL bucket functions of 0004/0010 spell it.
type grain struct{ name, width, fn string }

var grains = []grain{
	{"15min", "15 minutes", "analytics_quarter"},
	{"hourly", "1 hour", "analytics_hour"},
	{"daily", "1 day", "analytics_day"},
}

// dimSet is what a level keeps: the key columns beside the bucket, with their types, and the
// order counts of those dimensions (see the *_first flags of sales_facts).
type dimSet struct {
	suffix string
	keys   []column
	counts []string
}

type column struct{ Name, Type string }

var dimSets = []dimSet{
	{"", []column{{"product_id", "uuid NOT NULL"}, {"category_id", "uuid NOT NULL"}, {"brand_id", "uuid"}},
		[]string{"order", "category", "brand", "product"}},
	{"_totals", nil, []string{"order"}},
	{"_by_category", []column{{"category_id", "uuid NOT NULL"}}, []string{"order", "category"}},
	{"_by_brand", []column{{"brand_id", "uuid"}}, []string{"order", "brand"}},
}

// dimSuffixes are the name suffixes of the levels of one grain, the product level ("") first.
func dimSuffixes() []string {
	out := make([]string, len(dimSets))
	for i, d := range dimSets {
		out[i] = d.suffix
	}
	return out
}

// newLevel reads a level from its name ("sales_" GRAIN SUFFIX) and from what it aggregates.
func newLevel(name, from string) (Level, error) {
	l := Level{Name: name, From: from}
	var ok bool
	if l.grain, l.dims, ok = parseLevel(name); !ok {
		return Level{}, fmt.Errorf("%q is not the name of a rollup level", name)
	}
	if from == "sales_facts" {
		return l, nil
	}
	g, _, ok := parseLevel(from)
	if !ok {
		return Level{}, fmt.Errorf("%q is neither sales_facts nor a rollup level", from)
	}
	l.source = &g
	return l, nil
}

func parseLevel(name string) (grain, dimSet, bool) {
	for _, g := range grains {
		rest, ok := strings.CutPrefix(name, "sales_"+g.name)
		if !ok {
			continue
		}
		for _, d := range dimSets {
			if rest == d.suffix {
				return g, d, true
			}
		}
	}
	return grain{}, dimSet{}, false
}

// family returns the four levels of a grain, the product level first: aggregated from the
// facts, the product level from the facts and the others from it; else each from the level
// of the same dimensions of the finer grain from.
func family(grainName, from string) ([]Level, error) {
	out := make([]Level, 0, len(dimSets))
	for _, d := range dimSets {
		src := from + d.suffix
		if from == "sales_facts" {
			src = "sales_" + grainName
			if d.suffix == "" {
				src = from
			}
		}
		l, err := newLevel("sales_"+grainName+d.suffix, src)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// Raw tells whether the level aggregates the facts.
func (l Level) Raw() bool { return l.source == nil }

// Width is the level's bucket width as an interval literal: "1 hour".
func (l Level) Width() string { return l.grain.width }

// Column is what the level buckets: the facts' time or its source's bucket.
func (l Level) Column() string {
	if l.Raw() {
		return "time"
	}
	return "bucket"
}

// Bucket is the level's bucket of a row of its source, by the plain-PostgreSQL functions.
func (l Level) Bucket() string {
	if l.source != nil && *l.source == l.grain {
		return "bucket"
	}
	return l.grain.fn + "(" + l.Column() + ")"
}

// Keys are the level's key columns beside the bucket.
func (l Level) Keys() []column { return l.dims.keys }

// Counts are the level's order-count columns, each with the column of its source it sums.
func (l Level) Counts() []count {
	out := make([]count, len(l.dims.counts))
	for i, dim := range l.dims.counts {
		name := dim + "_orders"
		if dim == "order" {
			name = "orders"
		}
		out[i] = count{Name: name, Of: name}
		if l.Raw() {
			out[i].Of = dim + "_first"
		}
	}
	return out
}

// count is an order-count column and the column of the level's source it sums.
type count struct{ Name, Of string }

// GroupBy is the GROUP BY list of the level's rollup: the bucket and the keys, by position
// when the bucket is computed.
func (l Level) GroupBy() string {
	if l.Bucket() == "bucket" {
		names := []string{"bucket"}
		for _, k := range l.dims.keys {
			names = append(names, k.Name)
		}
		return strings.Join(names, ", ")
	}
	pos := make([]string, len(l.dims.keys)+1)
	for i := range pos {
		pos[i] = strconv.Itoa(i + 1)
	}
	return strings.Join(pos, ", ")
}

// FromMat is what the level's plain-PostgreSQL rollup reads: its source's table of partial
// sums, or the facts.
func (l Level) FromMat() string {
	if l.Raw() {
		return l.From
	}
	return l.From + "_mat"
}

// Watermark is the bound below which the level's rows are materialized: the watermark, a
// whole hour, or for a daily level the day it falls in.
func (l Level) Watermark() string {
	if l.grain.name == "daily" {
		return "analytics_day(watermark)"
	}
	return "watermark"
}

// Over is the level with the bounds of a rollup of its rows, as SQL expressions.
func (l Level) Over(lo, hi string) Span { return Span{l, lo, hi} }

// Span is a level and the bounds [Lo, Hi) of a rollup of its rows.
type Span struct {
	Level
	Lo, Hi string
}
