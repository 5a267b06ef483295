package model

import (
	"time"
)

// SalesBucket is the width of the buckets of a sales series.
type SalesBucket string

// The buckets of a sales series, in the report's time zone: weeks start on Monday, months
// are calendar months.
const (
	SalesBucketHour  SalesBucket = "HOUR"
	SalesBucketDay   SalesBucket = "DAY"
	SalesBucketWeek  SalesBucket = "WEEK"
	SalesBucketMonth SalesBucket = "MONTH"
)

// IsValid reports whether b is one of the buckets.
func (b SalesBucket) IsValid() bool {
	switch b {
	case SalesBucketHour, SalesBucketDay, SalesBucketWeek, SalesBucketMonth:
		return true
	}
	return false
}

// SalesGroupBy is the dimension a sales report has a series per value of.
type SalesGroupBy string

// The groupings of a sales report: one series, or one per (leaf) category, brand or product.
const (
	SalesGroupByNone     SalesGroupBy = "NONE"
	SalesGroupByCategory SalesGroupBy = "CATEGORY"
	SalesGroupByBrand    SalesGroupBy = "BRAND"
	SalesGroupByProduct  SalesGroupBy = "PRODUCT"
)

// IsValid reports whether g is one of the groupings.
func (g SalesGroupBy) IsValid() bool {
	switch g {
	case SalesGroupByNone, SalesGroupByCategory, SalesGroupByBrand, SalesGroupByProduct:
		return true
	}
	return false
}

// SalesMetric is what top products are ranked by.
type SalesMetric string

// The rankings of top products.
const (
	SalesMetricRevenue SalesMetric = "REVENUE"
	SalesMetricUnits   SalesMetric = "UNITS"
)

// IsValid reports whether m is one of the metrics.
func (m SalesMetric) IsValid() bool {
	return m == SalesMetricRevenue || m == SalesMetricUnits
}

// Limits of analytics queries.
const (
	MaxSalesBuckets     = 2000 // buckets in a range
	MaxSalesFilterIDs   = 100  // ids in each filter list
	MaxTopProducts      = 100  // products in a ranking
	DefaultSalesZone    = "UTC"
	salesFilterArgument = "filter"
)

// SalesFilter narrows a report to sales of some categories, brands or products; the lists
// combine with AND, the ids of a list with OR. A category matches itself and its
// descendants (the tree as it is now). Ids are raw UUIDs.
type SalesFilter struct {
	CategoryIDs []string
	BrandIDs    []string
	ProductIDs  []string
}

// IsEmpty reports whether f selects every sale.
func (f SalesFilter) IsEmpty() bool {
	return len(f.CategoryIDs) == 0 && len(f.BrandIDs) == 0 && len(f.ProductIDs) == 0
}

// SalesQuery asks for a sales report: figures per bucket of [From, To), per group.
type SalesQuery struct {
	From, To time.Time
	Bucket   SalesBucket
	GroupBy  SalesGroupBy
	Filter   SalesFilter
	// TimeZone is an IANA zone name ("" is UTC): buckets are its hours, days, weeks
	// (from Monday) and calendar months.
	TimeZone string
}

// SalesFigures are the sales of a bucket, a series or a report. Sales net of
// cancellations: a cancellation counts negatively at the time it happens, so a figure of a
// bucket may be negative.
//
// Orders counts distinct (order, value) pairs of a counting dimension among the selected
// sales: the grouping's dimension; with no grouping, the filtered dimension (the product
// when filtering on products, the brand when on brands but not products, the leaf category
// when on categories only); with neither, the order itself; and the product whenever both
// category and brand are involved (by grouping or filter), as neither determines the
// other. So with no grouping and no filter, Orders is the number of orders; grouped by
// category, an order buying in two categories counts once in each; filtered on a parent
// category, once per leaf category it bought in. Being a sum of per-sale flags, it adds up
// exactly across buckets and groups.
type SalesFigures struct {
	Revenue Cents
	Cost    Cents
	Orders  int
	Units   int
}

// Margin is revenue minus cost.
func (f SalesFigures) Margin() Cents { return f.Revenue - f.Cost }

// AverageOrderValue is revenue per order, rounded to the cent half away from zero; nil
// when there are no orders (none, or more cancelled than placed).
func (f SalesFigures) AverageOrderValue() *Cents {
	if f.Orders <= 0 {
		return nil
	}
	n, d := int64(f.Revenue), int64(f.Orders)
	q, r := n/d, n%d
	if r < 0 {
		r = -r
	}
	if 2*r >= d {
		if n < 0 {
			q--
		} else {
			q++
		}
	}
	c := Cents(q)
	return &c
}

// Add adds g to f.
func (f *SalesFigures) Add(g SalesFigures) {
	f.Revenue += g.Revenue
	f.Cost += g.Cost
	f.Orders += g.Orders
	f.Units += g.Units
}

// SalesPoint is the figures of one bucket.
type SalesPoint struct {
	BucketStart time.Time // in the report's zone
	SalesFigures
}

// SalesSeries is the points of one group, a point per bucket of the range (zeros where
// nothing sold), and their totals.
type SalesSeries struct {
	// GroupID is the raw UUID of the category, brand or product; "" with no grouping, and
	// for the sales of products without a brand.
	GroupID string
	Points  []SalesPoint
	Totals  SalesFigures
}

// SalesReport is the answer to a SalesQuery: a series per group that sold in the range, by
// group id, and the totals. From and To are the range widened to whole buckets.
type SalesReport struct {
	From, To time.Time
	Bucket   SalesBucket
	GroupBy  SalesGroupBy
	TimeZone string
	Series   []SalesSeries
	Totals   SalesFigures
}

// TopProductsQuery asks for the products that sold most in [From, To).
type TopProductsQuery struct {
	From, To time.Time
	By       SalesMetric
	First    int
}

// ProductSales is a product's figures over a range; Orders counts the orders that bought
// it.
type ProductSales struct {
	ProductID string
	SalesFigures
}

// Normalize validates q and widens its range to whole buckets of its zone: From is
// floored and To ceiled to bucket boundaries. Every IANA zone is served, whatever its offset
// from UTC. It refuses (BAD_USER_INPUT, with the argument): an unknown bucket or grouping; an
// unknown time zone; To not after From; more than MaxSalesBuckets buckets; more than
// MaxSalesFilterIDs ids in a filter list, or an id that is not a UUID.
func (q SalesQuery) Normalize() (SalesQuery, error) {
	if q.GroupBy == "" {
		q.GroupBy = SalesGroupByNone
	}
	if q.TimeZone == "" {
		q.TimeZone = DefaultSalesZone
	}
	if !q.Bucket.IsValid() {
		return q, InvalidArgument("bucket", "bucket must be HOUR, DAY, WEEK or MONTH")
	}
	if !q.GroupBy.IsValid() {
		return q, InvalidArgument("groupBy", "groupBy must be NONE, CATEGORY, BRAND or PRODUCT")
	}
	if err := q.Filter.check(); err != nil {
		return q, err
	}
	loc, err := loadZone(q.TimeZone)
	if err != nil {
		return q, err
	}
	if err := checkRange(q.From, q.To); err != nil {
		return q, err
	}
	from := floorBucket(q.From.In(loc), q.Bucket)
	to := floorBucket(q.To.In(loc), q.Bucket)
	if to.Before(q.To) {
		to = nextBucket(to, q.Bucket)
	}
	if n := len(SalesBuckets(from, to, q.Bucket, MaxSalesBuckets+1)); n > MaxSalesBuckets {
		return q, InvalidArgument("to", "the range holds more than %d %s buckets: narrow it or choose a coarser bucket",
			MaxSalesBuckets, q.Bucket)
	}
	q.From, q.To = from, to
	return q, nil
}

// Location returns the zone of a normalized query.
func (q SalesQuery) Location() *time.Location {
	loc, err := time.LoadLocation(q.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// Normalize validates q and widens its range to whole UTC hours. It refuses To not after From, an unknown metric, and
// First outside 1..MaxTopProducts.
func (q TopProductsQuery) Normalize() (TopProductsQuery, error) {
	if q.By == "" {
		q.By = SalesMetricRevenue
	}
	if !q.By.IsValid() {
		return q, InvalidArgument("by", "by must be REVENUE or UNITS")
	}
	if q.First < 1 || q.First > MaxTopProducts {
		return q, InvalidArgument("first", "first must be between 1 and %d", MaxTopProducts)
	}
	if err := checkRange(q.From, q.To); err != nil {
		return q, err
	}
	from, to := q.From.UTC().Truncate(time.Hour), q.To.UTC().Truncate(time.Hour)
	if to.Before(q.To) {
		to = to.Add(time.Hour)
	}
	q.From, q.To = from, to
	return q, nil
}

// Sales ranges stay within years that PostgreSQL and every zone database handle alike.
var (
	minSalesTime = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxSalesTime = time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func checkRange(from, to time.Time) error {
	switch {
	case from.IsZero():
		return InvalidArgument("from", "from is required")
	case to.IsZero():
		return InvalidArgument("to", "to is required")
	case !to.After(from):
		return InvalidArgument("to", "to must be after from")
	case from.Before(minSalesTime) || to.After(maxSalesTime):
		return InvalidArgument("from", "the range must lie between the years 1900 and 9000")
	}
	return nil
}

func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, InvalidArgument("timeZone", "%q is not an IANA time zone name such as \"Europe/Berlin\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, InvalidArgument("timeZone", "unknown time zone %q: use an IANA name such as \"Europe/Berlin\"", name)
	}
	return loc, nil
}

func (f SalesFilter) check() error {
	for _, l := range []struct {
		name string
		ids  []string
	}{{"categoryIds", f.CategoryIDs}, {"brandIds", f.BrandIDs}, {"productIds", f.ProductIDs}} {
		arg := salesFilterArgument + "." + l.name
		if len(l.ids) > MaxSalesFilterIDs {
			return InvalidArgument(arg, "at most %d ids", MaxSalesFilterIDs)
		}
		for _, id := range l.ids {
			if !IsUUID(id) {
				return InvalidArgument(arg, "%q is not an id", id)
			}
		}
	}
	return nil
}

// floorBucket returns the start of the bucket holding t, in t's location.
func floorBucket(t time.Time, b SalesBucket) time.Time {
	loc := t.Location()
	switch b {
	case SalesBucketHour:
		// The zone's hour: its offset may be a fraction of an hour (Asia/Kolkata, +05:30).
		return t.Add(-time.Duration(t.Minute())*time.Minute - time.Duration(t.Second())*time.Second -
			time.Duration(t.Nanosecond()))
	case SalesBucketDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	case SalesBucketWeek:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(t.Year(), t.Month(), t.Day()-back, 0, 0, 0, 0, loc)
	default:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, loc)
	}
}

// nextBucket returns the start of the bucket after the one starting at start.
func nextBucket(start time.Time, b SalesBucket) time.Time {
	switch b {
	case SalesBucketHour:
		return start.Add(time.Hour)
	case SalesBucketDay:
		return time.Date(start.Year(), start.Month(), start.Day()+1, 0, 0, 0, 0, start.Location())
	case SalesBucketWeek:
		return time.Date(start.Year(), start.Month(), start.Day()+7, 0, 0, 0, 0, start.Location())
	default:
		return time.Date(start.Year(), start.Month()+1, 1, 0, 0, 0, 0, start.Location())
	}
}

// SalesBuckets returns the starts of the buckets of [from, to), from a bucket boundary in
// the zone of from, at most limit of them.
func SalesBuckets(from, to time.Time, b SalesBucket, limit int) []time.Time {
	var out []time.Time
	for t := from; t.Before(to) && len(out) < limit; t = nextBucket(t, b) {
		out = append(out, t)
	}
	return out
}
