package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/homegoods/storefront/tools/internal/sysload"
)

// The storefront mix (-mix): an open-loop workload in the proportions of the case study's
// peak, each class held against the seed's p95. Operations start on a fixed schedule,
// whatever the server's speed, and their latency runs from the scheduled start, so that a
// server falling behind shows its queue in the percentiles instead of slowing the load.

// The pages the mix asks for, as a storefront shows them.
const (
	productPage = `query($s: String!) { product(slug: $s) { id name description price { amount currency }
  brand { name } category { name ancestors { name slug } } attributeList { key text } availability { inStock available } } }`
	searchFields = `totalCount edges { node { id name slug price { amount currency } } highlights { field fragments } }
  facets { key label values { value label count selected } } priceRange { min max }`
	browsePage    = `query($c: ID!) { search(filter: {categoryIds: [$c]}, first: 20) { ` + searchFields + ` } }`
	searchPage    = `query($q: String!) { search(query: $q, first: 20) { ` + searchFields + ` } }`
	inventoryPage = `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Product { id availability { inStock available } } } }`
	createCartOp  = `mutation { createCart { token } }`
	addLineOp     = `mutation($c: ID!, $p: ID!) { addCartLines(cartId: $c, lines: [{productId: $p, quantity: 1}]) { totalQuantity subtotal { amount } } }`
	removeLineOp  = `mutation($c: ID!, $p: ID!) { removeCartLines(cartId: $c, productIds: [$p]) { totalQuantity subtotal { amount } } }`
	checkoutOp    = `mutation($c: ID!, $k: String!, $e: String!, $a: String!) { checkout(cartId: $c, idempotencyKey: $k, email: $e,
  shippingAddress: {name: "Bench", line1: $a, city: "Springfield", postalCode: "12345", country: "US"}) { id status total { amount } } }`
)

// searchWords are what shoppers type: words of the seeded catalog, one misspelled.
var searchWords = []string{"sofa", "oak table", "lamp", "rug", "walnut", "armchair", "velvet sofa",
	"dining table", "bookcase", "pendant light", "linen", "brass lamp", "oak dining tabel", "platform bed"}

// class is one kind of operation of the mix.
type class struct {
	name   string
	share  float64       // of all operations
	target time.Duration // the seed's p95
	run    func(m *mixer, ctx context.Context) error
}

// storefrontMix is the case study's peak: what shoppers did, and the p95 it was served at.
func storefrontMix() []class {
	return []class{
		{"product page by slug", 0.40, 45 * time.Millisecond, (*mixer).productPage},
		{"category browse", 0.25, 85 * time.Millisecond, (*mixer).browse},
		{"search with facets", 0.15, 120 * time.Millisecond, (*mixer).search},
		{"cart operation", 0.15, 35 * time.Millisecond, (*mixer).cartOperation},
		{"inventory check", 0.045, 15 * time.Millisecond, (*mixer).inventoryCheck},
		{"order creation", 0.005, 120 * time.Millisecond, (*mixer).orderCreation},
	}
}

// mixer holds what the operations draw from: a sample of the catalog, found through the API
// before the run, and a pool of guest carts.
type mixer struct {
	client     *http.Client
	url        string
	header     http.Header
	slugs      []string
	products   []string // global ids of products in stock
	categories []string // global ids of every category
	carts      chan *cart
	orders     atomic.Int64
}

// cart is a guest cart of the pool and the products in it.
type cart struct {
	token string
	lines []string
}

// maxCartLines is how full a pooled cart gets before it is left for a new one.
const maxCartLines = 5

func (m *mixer) productPage(ctx context.Context) error {
	return m.do(ctx, productPage, map[string]any{"s": pick(m.slugs)}, nil)
}

func (m *mixer) browse(ctx context.Context) error {
	return m.do(ctx, browsePage, map[string]any{"c": pick(m.categories)}, nil)
}

func (m *mixer) search(ctx context.Context) error {
	return m.do(ctx, searchPage, map[string]any{"q": pick(searchWords)}, nil)
}

func (m *mixer) inventoryCheck(ctx context.Context) error {
	return m.do(ctx, inventoryPage, map[string]any{"ids": []string{pick(m.products), pick(m.products), pick(m.products)}}, nil)
}

// cartOperation adds a line to a cart of the pool, or one time in three removes the line
// added last; with no cart free, a new shopper creates one first.
func (m *mixer) cartOperation(ctx context.Context) error {
	var c *cart
	select {
	case c = <-m.carts:
	default:
		var err error
		if c, err = m.newCart(ctx); err != nil {
			return err
		}
	}
	var err error
	if n := len(c.lines); n > 0 && rand.IntN(3) == 0 {
		err = m.do(ctx, removeLineOp, map[string]any{"c": c.token, "p": c.lines[n-1]}, nil)
		c.lines = c.lines[:n-1]
	} else {
		p := pick(m.products)
		err = m.do(ctx, addLineOp, map[string]any{"c": c.token, "p": p}, nil)
		c.lines = append(c.lines, p)
	}
	if err == nil && len(c.lines) < maxCartLines {
		select {
		case m.carts <- c:
		default:
		}
	}
	return err
}

// orderCreation is a whole purchase: a cart, a line, the checkout.
func (m *mixer) orderCreation(ctx context.Context) error {
	c, err := m.newCart(ctx)
	if err != nil {
		return err
	}
	if err := m.do(ctx, addLineOp, map[string]any{"c": c.token, "p": pick(m.products)}, nil); err != nil {
		return err
	}
	// Each order is another guest's (email and street, unique across runs too), as in a real
	// peak: the limit on one guest's unpaid orders is not what the mix measures.
	key := fmt.Sprintf("mix-%d-%d", time.Now().UnixNano(), m.orders.Add(1))
	return m.do(ctx, checkoutOp, map[string]any{"c": c.token, "k": key, "e": key + "@example.com", "a": key + " Main St"}, nil)
}

func (m *mixer) newCart(ctx context.Context) (*cart, error) {
	var data struct {
		CreateCart struct{ Token string } `json:"createCart"`
	}
	if err := m.do(ctx, createCartOp, nil, &data); err != nil {
		return nil, err
	}
	return &cart{token: data.CreateCart.Token}, nil
}

func pick[T any](s []T) T { return s[rand.IntN(len(s))] }

// do posts one operation and fails on a transport error, a status other than 200 or any
// GraphQL error; with out set, it decodes the response's data into it.
func (m *mixer) do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = m.header
	resp, err := m.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if err := checkResponse(resp.StatusCode, resp.Header, buf.Bytes()); err != nil || out == nil {
		return err
	}
	var r struct{ Data json.RawMessage }
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		return err
	}
	return json.Unmarshal(r.Data, out)
}

// discover samples the catalog through the API: up to n products (their slugs, and the ids
// of those in stock) and every category.
func (m *mixer) discover(ctx context.Context, n int) error {
	const pageQuery = `query($after: String) { products(first: 100, after: $after) {
  edges { node { id slug availability { available } } } pageInfo { hasNextPage endCursor } } }`
	var after *string
	for len(m.slugs) < n {
		var page struct {
			Products struct {
				Edges []struct {
					Node struct {
						ID, Slug     string
						Availability struct{ Available int }
					}
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		if err := m.do(ctx, pageQuery, map[string]any{"after": after}, &page); err != nil {
			return fmt.Errorf("sample products: %w", err)
		}
		for _, e := range page.Products.Edges {
			m.slugs = append(m.slugs, e.Node.Slug)
			if e.Node.Availability.Available > 10 {
				m.products = append(m.products, e.Node.ID)
			}
		}
		if !page.Products.PageInfo.HasNextPage {
			break
		}
		after = page.Products.PageInfo.EndCursor
	}
	var tree struct {
		Categories []categoryNode
	}
	if err := m.do(ctx, `{ categories { id children { id children { id children { id } } } } }`, nil, &tree); err != nil {
		return fmt.Errorf("list categories: %w", err)
	}
	var walk func([]categoryNode)
	walk = func(cs []categoryNode) {
		for _, c := range cs {
			m.categories = append(m.categories, c.ID)
			walk(c.Children)
		}
	}
	walk(tree.Categories)
	if len(m.slugs) == 0 || len(m.products) == 0 || len(m.categories) == 0 {
		return fmt.Errorf("the catalog is empty: %d products, %d in stock, %d categories", len(m.slugs), len(m.products), len(m.categories))
	}
	return nil
}

type categoryNode struct {
	ID       string
	Children []categoryNode
}

// maxInFlight bounds the operations outstanding at once: past it the server is hopelessly
// behind, and further operations count as failed rather than pile up in the load generator.
const maxInFlight = 4096

// classResult is the outcome of one class in one step.
type classResult struct {
	class    *class
	lat      []time.Duration // sorted, from the scheduled start
	errors   int
	firstErr error
}

// holds reports whether the class met its target with no error. A rare class (orders are
// 0.5% of the mix) may have no operation in a step's window: it has then missed nothing.
func (r *classResult) holds() bool {
	return r.errors == 0 && (len(r.lat) == 0 || percentile(r.lat, 95) <= r.class.target)
}

// step runs the mix at rate operations per second for warmup and then duration, and returns
// each class's outcome over the measured window.
func (m *mixer) step(classes []class, rate float64, warmup, duration time.Duration) []*classResult {
	results := make([]*classResult, len(classes))
	for i := range classes {
		results[i] = &classResult{class: &classes[i]}
	}
	var mu sync.Mutex
	record := func(r *classResult, d time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		r.lat = append(r.lat, d)
		if err != nil {
			if r.errors == 0 {
				r.firstErr = err
			}
			r.errors++
		}
	}
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	measureFrom := start.Add(warmup)
	total := int((warmup + duration).Seconds() * rate)
	inFlight := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		r := results[choose(classes)]
		measured := !at.Before(measureFrom)
		select {
		case inFlight <- struct{}{}:
		default:
			if measured {
				record(r, time.Since(at), errors.New("the server is too far behind: too many operations in flight"))
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-inFlight }()
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			err := r.class.run(m, ctx)
			if measured {
				record(r, time.Since(at), err)
			}
		})
	}
	wg.Wait()
	for _, r := range results {
		slices.Sort(r.lat)
	}
	return results
}

// choose picks a class by its share.
func choose(classes []class) int {
	x := rand.Float64()
	for i, c := range classes {
		if x < c.share {
			return i
		}
		x -= c.share
	}
	return len(classes) - 1
}

// runMix samples the catalog and warms the server, then runs the mix at each rate in turn,
// printing each step's rows, until some class misses its target or fails; then it narrows
// the gap to the last rate that held (see highestHeld).
func runMix(cfg config, w io.Writer) error {
	m := &mixer{client: newClient(maxInFlight), url: cfg.url, header: cfg.header, carts: make(chan *cart, 1024)}
	if err := m.discover(context.Background(), cfg.sample); err != nil {
		return err
	}
	classes := storefrontMix()
	// A store at its peak has been open for a while: its caches and the popular searches'
	// memo are warm. Without this pass the first step would measure their filling, which
	// queues the step's whole window behind it.
	prime := max(cfg.rates[0]/2, 1)
	m.step(classes, prime, 2*cfg.warmup, 0)
	fmt.Fprintf(w, "Catalog sample: %d products (%d in stock), %d categories. Open loop, %s measured after %s per rate, "+
		"after %s of the mix at %.0f req/s, unmeasured, to warm the caches.\n\n",
		len(m.slugs), len(m.products), len(m.categories), cfg.duration, cfg.warmup, 2*cfg.warmup, prime)
	fmt.Fprintln(w, "| rate req/s | class | share | operations | errors | p50 ms | p95 ms | p99 ms | seed p95 ms | holds | load average |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
	held, missed := highestHeld(cfg.rates, cfg.refine, func(rate float64) bool { return m.holdsAt(w, classes, rate, cfg) })
	fmt.Fprintf(w, "\nHighest rate at which every class held the seed's p95 with no error: %.0f req/s", held)
	if missed > 0 {
		fmt.Fprintf(w, " (%.0f req/s did not)", missed)
	}
	fmt.Fprintf(w, ". The seed's peak: %.0f req/s with every class under its p95.\n", seedPeak)
	return nil
}

// highestHeld steps through rates until one does not hold, then tries refine more rates,
// each halfway between the last that held and the first that did not. It returns both (0
// when there is none).
func highestHeld(rates []float64, refine int, holds func(rate float64) bool) (held, missed float64) {
	for _, rate := range rates {
		if !holds(rate) {
			missed = rate
			break
		}
		held = rate
	}
	for range refine {
		if missed == 0 || missed-held < 2 {
			break
		}
		rate := math.Round((held + missed) / 2)
		if holds(rate) {
			held = rate
		} else {
			missed = rate
		}
	}
	return held, missed
}

// seedPeak is the case study's peak rate of this mix, operations per second.
const seedPeak = 2800.0

// holdsAt runs one step of the mix at rate, writes its rows and reports whether every class
// held its target with no error.
func (m *mixer) holdsAt(w io.Writer, classes []class, rate float64, cfg config) bool {
	results := m.step(classes, rate, cfg.warmup, cfg.duration)
	load := sysload.Average() // the load generator shares the machine with the server and others
	all := true
	for _, r := range results {
		all = all && r.holds()
		writeClassRow(w, rate, r, load)
	}
	for _, r := range results {
		if r.firstErr != nil {
			fmt.Fprintf(os.Stderr, "loadgen: %.0f req/s, %s: %d errors, first: %v\n", rate, r.class.name, r.errors, r.firstErr)
		}
	}
	return all
}

func writeClassRow(w io.Writer, rate float64, r *classResult, load string) {
	verdict := "yes"
	switch {
	case !r.holds():
		verdict = "**no**"
	case len(r.lat) == 0:
		verdict = "none ran"
	}
	fmt.Fprintf(w, "| %.0f | %s | %.1f%% | %d | %d | %.1f | %.1f | %.1f | %.0f | %s | %s |\n", rate, r.class.name, 100*r.class.share,
		len(r.lat), r.errors, ms(percentile(r.lat, 50)), ms(percentile(r.lat, 95)), ms(percentile(r.lat, 99)), ms(r.class.target), verdict, load)
}
