package store

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/homegoods/storefront/graph/model"
)

// TestReportPiecesAddUpToBuckets checks the arithmetic of cover on every elementary interval
// between the pieces' and buckets' bounds: the weights of a bucket's pieces add up to 1
// inside it and 0 outside, and the presence pieces cover the range exactly once. Zones with
// offsets of whole hours, half and three quarters of an hour, 12:45, 14 hours, daylight
// saving, and a local mean time of the past (Amsterdam, +00:19:32 until 1937).
func TestReportPiecesAddUpToBuckets(t *testing.T) {
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu",
		"Australia/Adelaide", "Pacific/Chatham", "Pacific/Kiritimati", "Pacific/Auckland", "Europe/Amsterdam"}
	buckets := []model.SalesBucket{model.SalesBucketHour, model.SalesBucketDay, model.SalesBucketWeek, model.SalesBucketMonth}
	span := map[model.SalesBucket]time.Duration{model.SalesBucketHour: 3 * 24 * time.Hour,
		model.SalesBucketDay: 40 * 24 * time.Hour, model.SalesBucketWeek: 90 * 24 * time.Hour, model.SalesBucketMonth: 400 * 24 * time.Hour}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		zone := zones[i%len(zones)]
		b := buckets[rng.IntN(len(buckets))]
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if zone == "Europe/Amsterdam" && i%20 < 10 {
			base = time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		from := base.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		q, err := model.SalesQuery{From: from, To: from.Add(time.Minute + time.Duration(rng.Int64N(int64(span[b])))),
			Bucket: b, TimeZone: zone}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		bounds := reportBounds(q)
		pieces, presence := reportPieces(bounds)
		checkPieces(t, q, bounds, pieces, presence)
	}
}

func checkPieces(t *testing.T, q model.SalesQuery, bounds []time.Time, pieces []piece, presence bool) {
	t.Helper()
	cuts := slices.Clone(bounds)
	for _, p := range pieces {
		if want := p.start.Add(grainWidth[min(p.grain, grainQuarter)]); p.grain != grainRaw && (!p.end.Equal(want) || !p.start.Equal(p.start.Truncate(grainWidth[p.grain]))) {
			t.Fatalf("%s %s in %s: piece %+v is not a row of its grain", q.From, q.Bucket, q.TimeZone, p)
		}
		cuts = append(cuts, p.start, p.end)
	}
	slices.SortFunc(cuts, time.Time.Compare)
	cuts = slices.CompactFunc(cuts, time.Time.Equal)
	for k := 0; k+1 < len(cuts); k++ {
		mid := cuts[k].Add(cuts[k+1].Sub(cuts[k]) / 2)
		sums := make([]int, len(bounds))
		covered := 0
		for _, p := range pieces {
			if !mid.Before(p.start) && mid.Before(p.end) {
				if p.bucket < 0 {
					covered++
				} else {
					sums[p.bucket] += p.weight
				}
			}
		}
		inside := !mid.Before(bounds[0]) && mid.Before(bounds[len(bounds)-1])
		if presence && covered != map[bool]int{true: 1, false: 0}[inside] {
			t.Fatalf("%s %s in %s: %s lies in %d presence pieces", q.From, q.Bucket, q.TimeZone, mid, covered)
		}
		for i := 0; i+1 < len(bounds); i++ {
			want := 0
			if !mid.Before(bounds[i]) && mid.Before(bounds[i+1]) {
				want = 1
			}
			if sums[i] != want {
				t.Fatalf("%s %s in %s: at %s bucket %d (%s) counts %d times; want %d", q.From, q.Bucket, q.TimeZone, mid, i, bounds[i], sums[i], want)
			}
		}
	}
}

// TestReportPiecesFewRows checks that cover reads few rows where it matters: a day of
// Asia/Kolkata in 15 (its half hours at either end and a UTC day), a day of Berlin in 3.
func TestReportPiecesFewRows(t *testing.T) {
	for _, c := range []struct {
		zone string
		most int
	}{{"Asia/Kolkata", 15}, {"Europe/Berlin", 3}, {"UTC", 1}} {
		loc, err := time.LoadLocation(c.zone)
		if err != nil {
			t.Fatal(err)
		}
		from := time.Date(2026, 11, 2, 0, 0, 0, 0, loc)
		q, err := model.SalesQuery{From: from, To: from.AddDate(0, 0, 30), Bucket: model.SalesBucketDay, TimeZone: c.zone}.Normalize()
		if err != nil {
			t.Fatal(err)
		}
		bounds := reportBounds(q)
		pieces, _ := reportPieces(bounds)
		perBucket := map[int]int{}
		for _, p := range pieces {
			if p.bucket >= 0 {
				perBucket[p.bucket]++
			}
		}
		for i, n := range perBucket {
			if n > c.most {
				t.Errorf("%s: bucket %d (%s) takes %d pieces; want at most %d", c.zone, i, bounds[i], n, c.most)
			}
		}
		if g := grainsRead(pieces); g[0] != grainDay {
			t.Errorf("%s: grains read %v; want days first", c.zone, g)
		}
	}
}
