package seed

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/homegoods/storefront/graph/model"
)

// base is the instant the catalog is generated "at": every timestamp is relative to it rather
// than to the clock, so that a seed gives the same rows whenever it runs.
var base = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// launched is when the categories, brands and warehouses were created, before any product.
var launched = base.AddDate(-1, 0, -30)

// The random streams of a catalog. Products and their stock each draw from a stream of their
// own, so the stock pass regenerates a product's id instead of holding every id in memory,
// and the first N products of a seed are the same whatever the number asked for.
const (
	streamSkeleton uint64 = iota + 1 // categories, brands and warehouses, drawn in turn
	streamProduct
	streamStock
)

type uuid = [16]byte

type category struct {
	id         uuid
	parent     pgtype.UUID
	path       []uuid
	slug, name string
}

type brand struct {
	id         uuid
	slug, name string
	families   []string
}

type warehouse struct {
	id         uuid
	code, name string
	priority   int
}

// leaf is a category that holds products.
type leaf struct {
	id     uuid
	family *family
	item   *item
	brands []int // indices of the brands selling in the leaf's family, most popular first
}

// catalog is the generated skeleton of a seed; products and stock are drawn from it row by
// row while they are copied.
type catalog struct {
	seed       uint64
	categories []category
	leaves     []leaf
	brands     []brand
	warehouses []warehouse
}

func newCatalog(seed int64) *catalog {
	c := &catalog{seed: splitmix(uint64(seed))}
	r := newRNG()
	c.reseed(r, streamSkeleton, 0)
	c.addBrands(r.Rand)
	for i := range families {
		f := &families[i]
		c.addCategory(r.Rand, f, &node{slug: f.slug, name: f.name, children: f.children}, nil)
	}
	c.addWarehouses(r.Rand)
	return c
}

func (c *catalog) addBrands(r *rand.Rand) {
	for _, s := range brandSpecs {
		c.brands = append(c.brands, brand{id: newUUID(r), slug: model.Slugify(s.name), name: s.name, families: s.families})
	}
}

// addCategory appends n and then its descendants, so that parents always come first.
func (c *catalog) addCategory(r *rand.Rand, f *family, n *node, parent []uuid) {
	id := newUUID(r)
	path := append(slices.Clip(parent), id)
	cat := category{id: id, path: path, slug: n.slug, name: n.name}
	if len(parent) > 0 {
		cat.parent = pgtype.UUID{Bytes: parent[len(parent)-1], Valid: true}
	}
	c.categories = append(c.categories, cat)
	if len(n.children) == 0 {
		c.leaves = append(c.leaves, leaf{id: id, family: f, item: &n.item, brands: c.brandsOf(f.slug)})
	}
	for i := range n.children {
		c.addCategory(r, f, &n.children[i], path)
	}
}

func (c *catalog) brandsOf(familySlug string) []int {
	var idx []int
	for i, b := range c.brands {
		if slices.Contains(b.families, familySlug) {
			idx = append(idx, i)
		}
	}
	return idx
}

func (c *catalog) addWarehouses(r *rand.Rand) {
	for _, s := range warehouseSpecs {
		c.warehouses = append(c.warehouses, warehouse{id: newUUID(r), code: s.code, name: s.name, priority: s.priority})
	}
}

// rng is a reusable random stream, reseeded for each product rather than allocated.
type rng struct {
	pcg rand.PCG
	*rand.Rand
}

func newRNG() *rng {
	g := &rng{}
	g.Rand = rand.New(&g.pcg)
	return g
}

// reseed points g at item i of a stream. The mixing keeps neighbouring items' streams apart.
func (c *catalog) reseed(g *rng, stream uint64, i int) {
	g.pcg.Seed(c.seed, splitmix(stream<<56^uint64(i)))
}

// productID is the id that product(g, i) draws first.
func (c *catalog) productID(g *rng, i int) uuid {
	c.reseed(g, streamProduct, i)
	return newUUID(g.Rand)
}

// productColumns are the products columns that product fills, in its order.
var productColumns = []string{
	"id", "sku", "slug", "name", "description", "category_id", "brand_id", "price_cents", "cost_cents",
	"currency", "status", "attributes", "popularity", "rating", "created_at", "updated_at",
}

// product draws product i as a row of productColumns.
func (c *catalog) product(g *rng, i int) ([]any, error) {
	c.reseed(g, streamProduct, i)
	r := g.Rand
	id := newUUID(r)
	l := &c.leaves[r.IntN(len(c.leaves))]
	attrs, sentence := l.family.attrs(&draw{r: r, leaf: l})
	doc, err := json.Marshal(attrs) // sorted keys: the same bytes every time
	if err != nil {
		return nil, fmt.Errorf("encode attributes: %w", err)
	}
	name := productName(collections[r.IntN(len(collections))], attrs, l.item.noun)
	brandID := c.brands[l.brands[skewed(r, len(l.brands))]].id
	price := priceCents(r, l.item.dollars)
	cost := price * int64(35+r.IntN(36)) / 100
	description := sentence + " " + blurbs[r.IntN(len(blurbs))]
	status, popularity, rating := productStatus(r), popularity(r), rating(r)
	created, updated := timestamps(r)
	return []any{
		id, fmt.Sprintf("%s-%06d", l.family.sku, i+1), model.Slugify(name) + "-" + strconv.Itoa(i+1), name, description,
		l.id, brandID, price, cost, "USD", status, doc, popularity, rating, created, updated,
	}, nil
}

// productName reads like "Hartwell Walnut Oak Dining Table": a collection, the look, the noun.
func productName(collection string, attrs map[string]any, noun string) string {
	words := []string{collection}
	for _, key := range []string{"color", "material", "finish"} {
		if w, ok := attrs[key].(string); ok && !slices.Contains(words, title(w)) {
			words = append(words, title(w))
		}
	}
	return strings.Join(append(words, noun), " ")
}

// skewed picks one of n, the first ones far more often: a few brands make most of a range.
func skewed(r *rand.Rand, n int) int {
	u := r.Float64()
	return int(float64(n) * u * u)
}

// priceCents draws a log-normal price around median dollars, ending in .99 as shelf prices do,
// and never below $5.
func priceCents(r *rand.Rand, median float64) int64 {
	dollars := median * math.Exp(0.5*r.NormFloat64())
	return int64(max(5, math.Floor(dollars)))*100 + 99
}

func productStatus(r *rand.Rand) string {
	switch u := r.Float64(); {
	case u < 0.92:
		return "ACTIVE"
	case u < 0.97:
		return "DRAFT"
	default:
		return "ARCHIVED"
	}
}

// popularity is Lomax (Pareto II) distributed: a median near 150, a long tail of best sellers,
// capped at 100000.
func popularity(r *rand.Rand) int32 {
	u := 1 - r.Float64() // in (0, 1]
	return int32(min(100000, 200*(math.Pow(u, -1/1.2)-1)))
}

// rating is mostly between 3.5 and 4.9, as review averages are, with a tenth of outliers.
func rating(r *rand.Rand) pgtype.Numeric {
	v := 4.2 + 0.3*r.NormFloat64()
	if r.Float64() < 0.1 {
		v = 1 + 4*r.Float64()
	}
	hundredths := int64(math.Round(min(5, max(1, v)) * 100))
	return pgtype.Numeric{Int: big.NewInt(hundredths), Exp: -2, Valid: true}
}

// timestamps spreads creation over the year before base; updates lean towards creation.
func timestamps(r *rand.Rand) (created, updated time.Time) {
	const year = 365 * 24 * 3600
	created = base.Add(-time.Duration(1+r.Int64N(year)) * time.Second)
	u := r.Float64()
	age := base.Sub(created).Seconds()
	return created, created.Add(time.Duration(age*u*u) * time.Second)
}

// stockColumns are the inventory columns that stock rows fill.
var stockColumns = []string{"product_id", "warehouse_id", "quantity", "updated_at"}

// stock draws product i's quantity in each warehouse into qty and when it was last counted:
// a tenth of products are sold out everywhere, the rest are missing from some warehouses and
// low in many.
func (c *catalog) stock(g *rng, i int, qty []int) time.Time {
	c.reseed(g, streamStock, i)
	r := g.Rand
	counted := base.Add(-time.Duration(r.Int64N(30*24*3600)) * time.Second)
	clear(qty)
	if r.Float64() < 0.10 {
		return counted
	}
	for w := range qty {
		if r.Float64() < 0.25 {
			continue // not stocked in this warehouse
		}
		u := r.Float64()
		qty[w] = int(200 * u * u * u)
	}
	if !slices.ContainsFunc(qty, func(q int) bool { return q > 0 }) {
		qty[r.IntN(len(qty))] = 1 + r.IntN(20) // keep sold-out-everywhere at a tenth
	}
	return counted
}

// newUUID draws a version 4 uuid from r rather than from crypto/rand, so that ids repeat with
// the seed.
func newUUID(r *rand.Rand) uuid {
	var u uuid
	binary.BigEndian.PutUint64(u[:8], r.Uint64())
	binary.BigEndian.PutUint64(u[8:], r.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// splitmix is SplitMix64's finaliser: it spreads nearby seeds over unrelated PCG states.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
