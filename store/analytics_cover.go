package store

import "time"

// A report's buckets are instants of its zone, the rollups' buckets UTC days, hours and
// quarter hours. cover writes each report bucket as a sum of rollup rows, with signs: a
// Kolkata day, from 18:30 UTC to 18:30 UTC the next day, is the five and a half hours after
// 18:30 plus the UTC day that follows minus the five and a half hours at its end, 15 rows
// rather than the 27 hours and quarters it holds (no whole UTC day fits in it). A Berlin
// day is an hour plus a UTC day minus an hour. Sums, costs, units and the order-counting
// flags all add up, so signed sums are exact.

// grain is a width of rollup rows, coarsest first; grainRaw stands for the raw facts, which
// only the bucket boundaries of historical local mean times (seconds off UTC) need.
type grain int

const (
	grainDay grain = iota
	grainHour
	grainQuarter
	grainRaw
)

var grainWidth = [...]time.Duration{grainDay: 24 * time.Hour, grainHour: time.Hour, grainQuarter: 15 * time.Minute}

// grainRelation is the prefix of the rollups of a grain; the level's suffix follows.
var grainRelation = [...]string{grainDay: "sales_daily", grainHour: "sales_hourly", grainQuarter: "sales_15min"}

// piece is a rollup row's bucket (or, grainRaw, the facts of [start, end)) counted weight
// times (+1 or -1) into the report bucket of index bucket.
type piece struct {
	grain      grain
	start, end time.Time
	weight     int
	bucket     int
}

// cover returns the pieces of [a, c) counted weight times into bucket: whole rollup rows
// of the coarsest grains that fit, from g down, each partial row either covered by finer
// rows or, when signed and that takes fewer rows, taken whole minus what lies outside.
func cover(out []piece, a, c time.Time, g grain, weight, bucket int, signed bool) []piece {
	if !a.Before(c) {
		return out
	}
	if g == grainRaw {
		return append(out, piece{grainRaw, a, c, weight, bucket})
	}
	w := grainWidth[g]
	lo, hi := a.Truncate(w), c.Truncate(w)
	if lo.Before(a) {
		lo = lo.Add(w)
	}
	if hi.Before(lo) { // [a, c) lies inside one row
		return part(out, a, c, g, weight, bucket, signed)
	}
	out = part(out, a, lo, g, weight, bucket, signed)
	for t := lo; t.Before(hi); t = t.Add(w) {
		out = append(out, piece{g, t, t.Add(w), weight, bucket})
	}
	return part(out, hi, c, g, weight, bucket, signed)
}

// part covers [a, c), which lies inside one row of grain g: with the finer grains, or with
// the row minus the finer pieces of the rest of it, whichever takes fewer pieces.
func part(out []piece, a, c time.Time, g grain, weight, bucket int, signed bool) []piece {
	if !a.Before(c) {
		return out
	}
	finer := cover(nil, a, c, g+1, weight, bucket, signed)
	if signed {
		start := a.Truncate(grainWidth[g])
		end := start.Add(grainWidth[g])
		whole := []piece{{g, start, end, weight, bucket}}
		whole = cover(whole, start, a, g+1, -weight, bucket, signed)
		whole = cover(whole, c, end, g+1, -weight, bucket, signed)
		if len(whole) < len(finer) {
			return append(out, whole...)
		}
	}
	return append(out, finer...)
}

// reportPieces returns the pieces of each bucket of a report (bounds holds the buckets'
// starts and the range's end), with signs. When some piece is negative, it adds the pieces
// of an unsigned cover of the whole range with weight 0 and bucket -1: a group has sales
// facts in the range exactly when it has a row among those (a row exists for a group that
// had facts in its bucket, even when they add up to zero), which signed sums cannot tell.
func reportPieces(bounds []time.Time) (pieces []piece, presence bool) {
	for i := 0; i+1 < len(bounds); i++ {
		pieces = cover(pieces, bounds[i], bounds[i+1], grainDay, 1, i, true)
	}
	for _, p := range pieces {
		if p.weight < 0 {
			return cover(pieces, bounds[0], bounds[len(bounds)-1], grainDay, 0, -1, false), true
		}
	}
	return pieces, false
}

// grainsRead returns the grains of the pieces of buckets (presence pieces aside), coarsest
// first.
func grainsRead(pieces []piece) []grain {
	var read [grainRaw + 1]bool
	for _, p := range pieces {
		if p.bucket >= 0 {
			read[p.grain] = true
		}
	}
	var out []grain
	for g, ok := range read {
		if ok {
			out = append(out, grain(g))
		}
	}
	return out
}
