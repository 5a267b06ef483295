package model

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestSalesQueryNormalize(t *testing.T) {
	utc := time.UTC
	ny, berlin, tokyo := mustZone(t, "America/New_York"), mustZone(t, "Europe/Berlin"), mustZone(t, "Asia/Tokyo")
	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	for _, c := range []struct {
		name     string
		q        SalesQuery
		from, to time.Time // the normalized range
		buckets  int
	}{
		{"UTC days", SalesQuery{From: at(utc, 2026, 3, 10, 13, 45), To: at(utc, 2026, 3, 12, 1, 0), Bucket: SalesBucketDay},
			at(utc, 2026, 3, 10, 0, 0), at(utc, 2026, 3, 13, 0, 0), 3},
		{"bounds kept", SalesQuery{From: at(utc, 2026, 3, 10, 0, 0), To: at(utc, 2026, 3, 12, 0, 0), Bucket: SalesBucketDay},
			at(utc, 2026, 3, 10, 0, 0), at(utc, 2026, 3, 12, 0, 0), 2},
		{"New York days over spring forward", SalesQuery{From: at(ny, 2026, 3, 7, 12, 0), To: at(ny, 2026, 3, 9, 12, 0), Bucket: SalesBucketDay, TimeZone: "America/New_York"},
			at(ny, 2026, 3, 7, 0, 0), at(ny, 2026, 3, 10, 0, 0), 3},
		{"New York hours over fall back", SalesQuery{From: at(utc, 2026, 11, 1, 4, 30), To: at(utc, 2026, 11, 1, 8, 0), Bucket: SalesBucketHour, TimeZone: "America/New_York"},
			at(utc, 2026, 11, 1, 4, 0), at(utc, 2026, 11, 1, 8, 0), 4},
		{"Berlin weeks from Monday", SalesQuery{From: at(berlin, 2026, 11, 25, 9, 0), To: at(berlin, 2026, 12, 1, 0, 0), Bucket: SalesBucketWeek, TimeZone: "Europe/Berlin"},
			at(berlin, 2026, 11, 23, 0, 0), at(berlin, 2026, 12, 7, 0, 0), 2},
		{"Tokyo months", SalesQuery{From: at(utc, 2026, 10, 31, 20, 0), To: at(utc, 2027, 1, 15, 0, 0), Bucket: SalesBucketMonth, TimeZone: "Asia/Tokyo"},
			at(tokyo, 2026, 11, 1, 0, 0), at(tokyo, 2027, 2, 1, 0, 0), 3},
		{"2000 hours", SalesQuery{From: at(utc, 2026, 1, 1, 0, 0), To: at(utc, 2026, 1, 1, 0, 0).Add(2000 * time.Hour), Bucket: SalesBucketHour},
			at(utc, 2026, 1, 1, 0, 0), at(utc, 2026, 1, 1, 0, 0).Add(2000 * time.Hour), 2000},
		{"Amsterdam once it kept whole hours", SalesQuery{From: at(utc, 1950, 1, 1, 0, 0), To: at(utc, 1950, 2, 1, 0, 0), Bucket: SalesBucketMonth, TimeZone: "Europe/Amsterdam"},
			at(mustZone(t, "Europe/Amsterdam"), 1950, 1, 1, 0, 0), at(mustZone(t, "Europe/Amsterdam"), 1950, 3, 1, 0, 0), 2},
	} {
		got, err := c.q.Normalize()
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !got.From.Equal(c.from) || !got.To.Equal(c.to) {
			t.Errorf("%s: range %s..%s; want %s..%s", c.name, got.From, got.To, c.from, c.to)
		}
		if n := len(SalesBuckets(got.From, got.To, got.Bucket, 5000)); n != c.buckets {
			t.Errorf("%s: %d buckets; want %d", c.name, n, c.buckets)
		}
		if got.GroupBy != SalesGroupByNone || got.TimeZone == "" {
			t.Errorf("%s: groupBy %q, zone %q; want the defaults NONE and UTC filled in", c.name, got.GroupBy, got.TimeZone)
		}
	}
}

func TestSalesQueryNormalizeRefuses(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ok := SalesQuery{From: now.Add(-24 * time.Hour), To: now, Bucket: SalesBucketHour}
	with := func(f func(*SalesQuery)) SalesQuery { q := ok; f(&q); return q }
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "7f1c2a9e-0000-4000-8000-000000000001"
		}
		return out
	}
	for _, c := range []struct {
		name, argument, message string
		q                       SalesQuery
	}{
		{"to before from", "to", "after", with(func(q *SalesQuery) { q.To = q.From.Add(-time.Second) })},
		{"empty range", "to", "after", with(func(q *SalesQuery) { q.To = q.From })},
		{"no from", "from", "required", with(func(q *SalesQuery) { q.From = time.Time{} })},
		{"year 1000", "from", "1900", with(func(q *SalesQuery) { q.From = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC) })},
		{"bad bucket", "bucket", "HOUR", with(func(q *SalesQuery) { q.Bucket = "YEAR" })},
		{"no bucket", "bucket", "HOUR", with(func(q *SalesQuery) { q.Bucket = "" })},
		{"bad grouping", "groupBy", "NONE", with(func(q *SalesQuery) { q.GroupBy = "COLOR" })},
		{"2001 hours", "to", "2000", with(func(q *SalesQuery) { q.To = q.From.Add(2001 * time.Hour) })},
		{"years of days", "to", "2000", with(func(q *SalesQuery) { q.Bucket, q.To = SalesBucketDay, q.From.AddDate(6, 0, 0) })},
		{"unknown zone", "timeZone", "unknown", with(func(q *SalesQuery) { q.TimeZone = "Mars/Olympus_Mons" })},
		{"the server's zone", "timeZone", "IANA", with(func(q *SalesQuery) { q.TimeZone = "Local" })},
		{"too many categories", "filter.categoryIds", "100", with(func(q *SalesQuery) { q.Filter.CategoryIDs = ids(101) })},
		{"too many brands", "filter.brandIds", "100", with(func(q *SalesQuery) { q.Filter.BrandIDs = ids(101) })},
		{"not an id", "filter.productIds", "not an id", with(func(q *SalesQuery) { q.Filter.ProductIDs = []string{"gid://storefront/Product/1"} })},
	} {
		_, err := c.q.Normalize()
		var me *Error
		if !errors.As(err, &me) || me.Code != CodeBadUserInput || me.Argument != c.argument || !strings.Contains(me.Message, c.message) {
			t.Errorf("%s: got %v; want BAD_USER_INPUT at %q saying %q", c.name, err, c.argument, c.message)
		}
	}
	if _, err := with(func(q *SalesQuery) { q.Filter.CategoryIDs = ids(100) }).Normalize(); err != nil {
		t.Errorf("100 category ids: %v; want them accepted", err)
	}
}

// Every zone is served, its buckets starting on its own hours whatever its offset: a half
// hour, three quarters, or the seconds of a local mean time.
func TestSalesQueryNormalizeServesEveryZone(t *testing.T) {
	for _, c := range []struct {
		zone     string
		from, to time.Time
	}{
		{"Asia/Kolkata", time.Date(2026, 11, 26, 10, 10, 0, 0, time.UTC), time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)},
		{"Asia/Kathmandu", time.Date(2026, 11, 26, 10, 10, 0, 0, time.UTC), time.Date(2026, 11, 26, 13, 0, 0, 0, time.UTC)},
		{"America/St_Johns", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)},
		{"Australia/Adelaide", time.Date(2026, 4, 4, 14, 0, 0, 0, time.UTC), time.Date(2026, 4, 4, 18, 0, 0, 0, time.UTC)},
		{"Europe/Amsterdam", time.Date(1935, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1935, 1, 1, 3, 0, 0, 0, time.UTC)},
	} {
		q, err := SalesQuery{From: c.from, To: c.to, Bucket: SalesBucketHour, TimeZone: c.zone}.Normalize()
		if err != nil {
			t.Errorf("%s: %v; want it served", c.zone, err)
			continue
		}
		buckets := SalesBuckets(q.From, q.To, q.Bucket, MaxSalesBuckets)
		for _, b := range buckets {
			if b.Minute() != 0 || b.Second() != 0 || b.Location().String() != c.zone {
				t.Errorf("%s: bucket %s; want one starting on an hour of the zone", c.zone, b)
			}
		}
		if len(buckets) != int(q.To.Sub(q.From)/time.Hour) || q.From.After(c.from) || !q.From.Add(time.Hour).After(c.from) ||
			q.To.Before(c.to) || !q.To.Add(-time.Hour).Before(c.to) {
			t.Errorf("%s: %d buckets over %s..%s; want the zone's hours covering %s..%s", c.zone, len(buckets), q.From, q.To, c.from, c.to)
		}
	}
}

func TestSalesFigures(t *testing.T) {
	for _, c := range []struct {
		revenue Cents
		orders  int
		want    string // "" for nil
	}{
		{100_000, 3, "333.33"},         // 33,333.33 cents: down
		{200, 3, "0.67"},               // 66.67: up
		{1001, 2, "5.01"},              // 500.5: half away from zero
		{1003, 2, "5.02"},              // 501.5
		{-1001, 2, "-5.01"},            // -500.5: half away from zero
		{-200, 3, "-0.67"},             // -66.67
		{0, 4, "0.00"},                 // nothing sold, orders placed and fully refunded elsewhere
		{5000, 0, ""},                  // no orders
		{-5000, -1, ""},                // more cancelled than placed
		{1 << 61, 1 << 40, "20971.52"}, // no overflow
	} {
		f := SalesFigures{Revenue: c.revenue, Orders: c.orders}
		got := f.AverageOrderValue()
		switch {
		case c.want == "" && got != nil:
			t.Errorf("AverageOrderValue(%s / %d) = %s; want nil", c.revenue, c.orders, got)
		case c.want != "" && (got == nil || got.String() != c.want):
			t.Errorf("AverageOrderValue(%s / %d) = %v; want %s", c.revenue, c.orders, got, c.want)
		}
	}
	if m := (SalesFigures{Revenue: 1000, Cost: 1250}).Margin(); m != -250 {
		t.Errorf("Margin = %s; want -2.50", m)
	}
}

func TestTopProductsQueryNormalize(t *testing.T) {
	from := time.Date(2026, 11, 1, 10, 30, 0, 0, time.UTC)
	q, err := TopProductsQuery{From: from, To: from.Add(time.Hour), First: 10}.Normalize()
	if err != nil || !q.From.Equal(from.Add(-30*time.Minute)) || !q.To.Equal(from.Add(90*time.Minute)) || q.By != SalesMetricRevenue {
		t.Errorf("Normalize: %+v, %v; want the whole hours 10:00..12:00 by REVENUE", q, err)
	}
	for _, c := range []struct {
		q        TopProductsQuery
		argument string
	}{
		{TopProductsQuery{From: from, To: from, First: 10}, "to"},
		{TopProductsQuery{From: from, To: from.Add(time.Hour), First: 0}, "first"},
		{TopProductsQuery{From: from, To: from.Add(time.Hour), First: 101}, "first"},
		{TopProductsQuery{From: from, To: from.Add(time.Hour), First: 5, By: "MARGIN"}, "by"},
	} {
		_, err := c.q.Normalize()
		var me *Error
		if !errors.As(err, &me) || me.Code != CodeBadUserInput || me.Argument != c.argument {
			t.Errorf("Normalize(%+v): %v; want BAD_USER_INPUT at %s", c.q, err, c.argument)
		}
	}
}
