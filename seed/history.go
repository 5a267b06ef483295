package seed

import (
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// genOrder is one generated order.
type genOrder struct {
	id, cart   uuid
	customer   string
	placed     time.Time
	cancelled  *time.Time
	paid       *time.Time
	fulfilled  *time.Time
	lines      []genLine
	totalCents int64
}

// genLine is a line of a generated order, served from one warehouse.
type genLine struct {
	product   *sellable
	warehouse uuid
	quantity  int
}

func (o *genOrder) status() string {
	switch {
	case o.cancelled != nil:
		return "CANCELLED"
	case o.fulfilled != nil:
		return "FULFILLED"
	}
	return "PAID"
}

// history generates the orders of a seed day by day. Every pass over the tables makes a new
// history from the same seed, so that nothing but the catalog is held in memory.
type history struct {
	shop   *shop
	opts   OrderOptions
	start  time.Time
	cum    []float64 // orders due by the end of each day, fractional
	r      *rand.Rand
	day    int
	placed int // orders generated so far
}

func newHistory(s *shop, opts OrderOptions) func() *history {
	end := opts.End.UTC().Truncate(24 * time.Hour)
	start := end.AddDate(0, 0, -historyDays)
	weights := dayWeights(start)
	var total float64
	for _, w := range weights {
		total += w
	}
	cum := make([]float64, len(weights))
	var acc float64
	for i, w := range weights {
		acc += w
		cum[i] = float64(opts.Orders) * acc / total
	}
	return func() *history {
		return &history{shop: s, opts: opts, start: start, cum: cum,
			r: rand.New(rand.NewPCG(uint64(opts.Seed), splitmix(uint64(opts.Seed)^0x5eed0))), day: 0}
	}
}

// next returns the next order, or nil after the last.
func (h *history) next() *genOrder {
	for h.day < len(h.cum) && h.placed >= int(math.Round(h.cum[h.day])) {
		h.day++
	}
	if h.day == len(h.cum) {
		return nil
	}
	h.placed++
	return h.order(h.start.AddDate(0, 0, h.day))
}

func (h *history) order(day time.Time) *genOrder {
	r := h.r
	o := &genOrder{id: newUUID(r), cart: newUUID(r)}
	o.customer = "seed-customer-" + strconv.Itoa(1+r.IntN(max(1, h.opts.Orders/3)))
	o.placed = day.Add(time.Duration(h.hour()) * time.Hour).Add(time.Duration(r.IntN(3600)) * time.Second)
	h.fillLines(o)
	end := h.opts.End
	switch {
	case r.Float64() < cancelRate:
		at := o.placed.Add(time.Duration(1+r.IntN(48)) * time.Hour)
		if at.After(end) {
			at = end
		}
		o.cancelled = &at
	default:
		paid := o.placed.Add(time.Duration(1+r.IntN(10)) * time.Minute)
		o.paid = &paid
		if f := o.placed.Add(time.Duration(24+r.IntN(48)) * time.Hour); f.Before(end) {
			o.fulfilled = &f
		}
	}
	return o
}

// hour draws the hour of an order from the day's curve.
func (h *history) hour() int {
	var total float64
	for _, w := range hourWeights {
		total += w
	}
	x := h.r.Float64() * total
	for i, w := range hourWeights {
		if x < w {
			return i
		}
		x -= w
	}
	return 23
}

// fillLines draws one to six distinct products, most orders holding one or two.
func (h *history) fillLines(o *genOrder) {
	r := h.r
	n := 1
	for n < 6 && r.Float64() < 0.45 {
		n++
	}
	seen := map[uuid]bool{}
	for range n {
		p := h.shop.draw(r)
		if seen[p.id] {
			continue
		}
		seen[p.id] = true
		q := 1
		if u := r.Float64(); u > 0.95 {
			q = 3 + r.IntN(2)
		} else if u > 0.85 {
			q = 2
		}
		w := h.shop.warehouses[r.IntN(len(h.shop.warehouses))]
		o.lines = append(o.lines, genLine{product: p, warehouse: w, quantity: q})
		o.totalCents += int64(q) * p.price
	}
}
