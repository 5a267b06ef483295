package seed

// The fixed vocabulary of the demo catalog: which categories exist, what their products are
// called and cost, and the few values each attribute takes. Keeping every attribute to a
// handful of values is what makes facet filters such as {"material":"oak"} find products.

// family is a top-level category: its products share a sku prefix and an attribute shape.
type family struct {
	slug, name string
	sku        string
	// attrs draws a product's attributes and the sentence that describes them.
	attrs    func(p *draw) (map[string]any, string)
	vocab    map[string][]string
	children []node
}

// node is a category below a family; one without children is a leaf and holds the products.
type node struct {
	slug, name string
	item       item
	children   []node
}

// item describes the products of a leaf category.
type item struct {
	noun    string  // singular, as it ends a product name: "Sectional Sofa"
	dollars float64 // median price
	dims    [3]int  // typical width, depth and height in cm (furniture)
	kg      float64 // typical weight (furniture and outdoor)
	vocab   map[string][]string
}

var (
	upholstery = map[string][]string{"material": {"velvet", "linen", "boucle", "leather", "performance-fabric"}}
	timber     = map[string][]string{"material": {"oak", "walnut", "ash", "pine", "mango-wood", "metal"}}
)

var families = []family{
	{
		slug: "furniture", name: "Furniture", sku: "FUR", attrs: furnitureAttrs,
		vocab: map[string][]string{"color": {"natural", "walnut", "white", "black", "grey", "cream", "navy", "olive", "charcoal", "rust"}},
		children: []node{
			{slug: "sofas", name: "Sofas", children: []node{
				{slug: "sectional-sofas", name: "Sectional Sofas", item: item{noun: "Sectional Sofa", dollars: 1500, dims: [3]int{280, 160, 85}, kg: 95, vocab: upholstery}},
				{slug: "sleeper-sofas", name: "Sleeper Sofas", item: item{noun: "Sleeper Sofa", dollars: 1100, dims: [3]int{210, 95, 85}, kg: 80, vocab: upholstery}},
				{slug: "loveseats", name: "Loveseats", item: item{noun: "Loveseat", dollars: 700, dims: [3]int{150, 90, 85}, kg: 45, vocab: upholstery}},
			}},
			{slug: "armchairs", name: "Armchairs", item: item{noun: "Armchair", dollars: 420, dims: [3]int{80, 85, 90}, kg: 22, vocab: upholstery}},
			{slug: "dining-tables", name: "Dining Tables", item: item{noun: "Dining Table", dollars: 650, dims: [3]int{180, 90, 76}, kg: 40, vocab: timber}},
			{slug: "coffee-tables", name: "Coffee Tables", item: item{noun: "Coffee Table", dollars: 250, dims: [3]int{110, 60, 45}, kg: 18, vocab: timber}},
			{slug: "beds", name: "Beds", children: []node{
				{slug: "platform-beds", name: "Platform Beds", item: item{noun: "Platform Bed", dollars: 550, dims: [3]int{165, 215, 35}, kg: 50, vocab: timber}},
				{slug: "upholstered-beds", name: "Upholstered Beds", item: item{noun: "Upholstered Bed", dollars: 850, dims: [3]int{170, 220, 120}, kg: 60, vocab: upholstery}},
			}},
			{slug: "bookcases", name: "Bookcases", item: item{noun: "Bookcase", dollars: 200, dims: [3]int{90, 35, 180}, kg: 30, vocab: timber}},
		},
	},
	{
		slug: "lighting", name: "Lighting", sku: "LGT", attrs: lightingAttrs,
		vocab: map[string][]string{
			"bulb_type": {"led", "e26", "e12", "gu10"},
			"finish":    {"brass", "black", "chrome", "nickel", "bronze", "white", "copper"},
		},
		children: []node{
			{slug: "floor-lamps", name: "Floor Lamps", item: item{noun: "Floor Lamp", dollars: 100}},
			{slug: "table-lamps", name: "Table Lamps", item: item{noun: "Table Lamp", dollars: 70}},
			{slug: "pendants", name: "Pendants", item: item{noun: "Pendant Light", dollars: 90}},
			{slug: "ceiling-lights", name: "Ceiling Lights", children: []node{
				{slug: "chandeliers", name: "Chandeliers", item: item{noun: "Chandelier", dollars: 320}},
				{slug: "flush-mounts", name: "Flush Mounts", item: item{noun: "Flush Mount", dollars: 80}},
			}},
		},
	},
	{
		slug: "rugs", name: "Rugs", sku: "RUG", attrs: rugAttrs,
		vocab: map[string][]string{
			"material":    {"wool", "jute", "cotton", "polypropylene", "viscose", "sisal"},
			"color":       {"ivory", "grey", "blue", "rust", "beige", "black", "multi", "sage"},
			"size":        {"3x5", "5x8", "6x9", "8x10", "9x12"},
			"pile_height": {"flatweave", "low", "medium", "high"},
			"shape":       {"rectangle", "rectangle", "rectangle", "round", "square"},
		},
		children: []node{
			{slug: "area-rugs", name: "Area Rugs", item: item{noun: "Area Rug", dollars: 200}},
			{slug: "runners", name: "Runners", item: item{noun: "Runner", dollars: 80, vocab: map[string][]string{
				"size": {"2x6", "2x8", "2.5x10", "3x12"}, "shape": {"runner"},
			}}},
			{slug: "outdoor-rugs", name: "Outdoor Rugs", item: item{noun: "Outdoor Rug", dollars: 80, vocab: map[string][]string{
				"material": {"polypropylene", "polyester", "recycled-pet"}, "pile_height": {"flatweave", "low"},
			}}},
		},
	},
	{
		slug: "bedding", name: "Bedding", sku: "BED", attrs: beddingAttrs,
		vocab: map[string][]string{
			"material": {"cotton", "linen", "percale", "sateen", "bamboo", "flannel"},
			"color":    {"white", "ivory", "grey", "sage", "navy", "blush", "charcoal", "oatmeal"},
			"size":     {"twin", "full", "queen", "queen", "king", "california-king"},
		},
		children: []node{
			{slug: "duvets", name: "Duvet Covers", item: item{noun: "Duvet Cover", dollars: 95}},
			{slug: "sheets", name: "Sheets", item: item{noun: "Sheet Set", dollars: 80}},
			{slug: "pillows", name: "Pillows", item: item{noun: "Pillow", dollars: 40, vocab: map[string][]string{
				"material": {"down", "down-alternative", "memory-foam", "cotton"}, "size": {"standard", "queen", "king", "euro"},
			}}},
			{slug: "blankets", name: "Blankets", children: []node{
				{slug: "throws", name: "Throws", item: item{noun: "Throw Blanket", dollars: 60, vocab: map[string][]string{
					"material": {"wool", "cotton", "cashmere", "fleece"}, "size": {"50x60", "60x80"},
				}}},
				{slug: "quilts", name: "Quilts", item: item{noun: "Quilt", dollars: 100}},
			}},
		},
	},
	{
		slug: "decor", name: "Decor", sku: "DEC", attrs: decorAttrs,
		vocab: map[string][]string{
			"material": {"ceramic", "glass", "stoneware", "brass", "marble", "wood", "concrete"},
			"color":    {"white", "black", "cream", "terracotta", "sage", "blue", "gold", "natural"},
			"style":    {"modern", "rustic", "minimalist", "coastal", "bohemian", "mid-century", "farmhouse", "art-deco"},
		},
		children: []node{
			{slug: "vases", name: "Vases", item: item{noun: "Vase", dollars: 35}},
			{slug: "mirrors", name: "Mirrors", item: item{noun: "Mirror", dollars: 100, vocab: map[string][]string{
				"material": {"brass", "black-metal", "oak", "rattan", "gold-leaf"},
			}}},
			{slug: "wall-art", name: "Wall Art", item: item{noun: "Wall Art Print", dollars: 85, vocab: map[string][]string{
				"material": {"canvas", "framed-print", "metal", "paper"},
			}}},
			{slug: "candles", name: "Candles", item: item{noun: "Candle", dollars: 25, vocab: map[string][]string{
				"material": {"soy-wax", "beeswax", "coconut-wax"},
			}}},
		},
	},
	{
		slug: "outdoor", name: "Outdoor", sku: "OUT", attrs: outdoorAttrs,
		vocab: map[string][]string{
			"material": {"teak", "acacia", "aluminum", "resin-wicker", "steel"},
			"color":    {"natural", "grey", "black", "white", "sand", "green", "navy"},
		},
		children: []node{
			{slug: "patio-chairs", name: "Patio Chairs", item: item{noun: "Patio Chair", dollars: 110, kg: 9}},
			{slug: "patio-tables", name: "Patio Tables", item: item{noun: "Patio Table", dollars: 330, kg: 28}},
			{slug: "planters", name: "Planters", item: item{noun: "Planter", dollars: 45, kg: 6, vocab: map[string][]string{
				"material": {"terracotta", "concrete", "fiberglass", "ceramic", "galvanized-steel"},
			}}},
			{slug: "parasols", name: "Parasols", item: item{noun: "Parasol", dollars: 110, kg: 12, vocab: map[string][]string{
				"material": {"polyester", "olefin", "solution-dyed-acrylic"},
			}}},
		},
	},
}

// brandSpec is an invented label and the families it sells in.
type brandSpec struct {
	name     string
	families []string
}

var brandSpecs = []brandSpec{
	{"Northfold", []string{"furniture"}},
	{"Alder & Ash", []string{"furniture", "decor"}},
	{"Hearthline", []string{"furniture"}},
	{"Juniper Row", []string{"furniture", "bedding"}},
	{"Oak & Ember", []string{"furniture"}},
	{"Ironbark", []string{"furniture", "outdoor"}},
	{"Maple Quarter", []string{"furniture"}},
	{"Brackenwood", []string{"furniture"}},
	{"Elmstead", []string{"furniture"}},
	{"Ridgecrest Living", []string{"furniture", "decor"}},
	{"Ashgrove", []string{"furniture"}},
	{"Larchmont Goods", []string{"furniture", "lighting", "decor"}},
	{"Millbrook & Co.", []string{"furniture", "bedding"}},
	{"Rowan & Reed", []string{"furniture", "rugs"}},
	{"Yarrow & Pine", []string{"outdoor", "furniture"}},
	{"Lumen & Loom", []string{"lighting", "rugs"}},
	{"Bluebeam Lighting", []string{"lighting"}},
	{"Emberlight", []string{"lighting"}},
	{"Lanternfield", []string{"lighting"}},
	{"Glasshaus", []string{"lighting", "decor"}},
	{"Copperleaf", []string{"lighting", "decor"}},
	{"Kestrel Home", []string{"lighting", "furniture"}},
	{"Greywick", []string{"decor", "lighting"}},
	{"Cobblestone Rugs", []string{"rugs"}},
	{"Woolhouse", []string{"rugs", "bedding"}},
	{"Saltmarsh", []string{"rugs", "outdoor"}},
	{"Umber Works", []string{"rugs", "decor"}},
	{"Foxglove Studio", []string{"rugs", "bedding", "decor"}},
	{"Nettlefield", []string{"rugs"}},
	{"Hollowbrook", []string{"rugs", "bedding"}},
	{"Flaxen Bedding", []string{"bedding"}},
	{"Thistledown", []string{"bedding"}},
	{"Dovecote", []string{"bedding"}},
	{"Velvetine", []string{"bedding", "furniture"}},
	{"Stillwater Home", []string{"bedding", "decor"}},
	{"Willowmere", []string{"bedding"}},
	{"Quillfeather", []string{"bedding"}},
	{"Cinder & Clay", []string{"decor"}},
	{"Moss & Marble", []string{"decor"}},
	{"Goldfinch", []string{"decor"}},
	{"Inglenook", []string{"decor"}},
	{"Amberlane", []string{"decor"}},
	{"Pebblecreek", []string{"decor"}},
	{"Orchard Lane", []string{"decor", "outdoor"}},
	{"Fernhollow", []string{"outdoor", "decor"}},
	{"Zephyr Outdoor", []string{"outdoor"}},
	{"Tidewell", []string{"outdoor"}},
	{"Driftstone", []string{"outdoor"}},
	{"Sagebrush Supply", []string{"outdoor"}},
	{"Harborview", []string{"outdoor"}},
}

// warehouseSpecs are the distribution centres, preferred in priority order when an order is
// split.
var warehouseSpecs = []struct {
	code, name string
	priority   int
}{
	{"EWR1", "Newark, NJ", 10},
	{"ATL1", "Atlanta, GA", 20},
	{"DFW1", "Dallas-Fort Worth, TX", 30},
	{"LAX1", "Los Angeles, CA", 40},
}

// collections open product names, so that a brand's range reads like a catalogue.
var collections = []string{
	"Hartwell", "Ashby", "Marlow", "Linden", "Holloway", "Brighton", "Calder", "Dunmore",
	"Everly", "Fairfax", "Greyson", "Harlow", "Kensington", "Larkin", "Mercer", "Norwood",
	"Oakley", "Prescott", "Quinby", "Redmond", "Sutton", "Thornton", "Upton", "Vance",
	"Whitley", "Yardley", "Bexley", "Carver", "Delancey", "Ellison", "Finley", "Galloway",
	"Hollis", "Iverson", "Keaton", "Lowell", "Monroe", "Nash", "Arden", "Sloane",
}

// blurbs close product descriptions.
var blurbs = []string{
	"Designed in our studio and built to last for years of daily use.",
	"Ships in 3-5 business days; free returns within 30 days.",
	"Made in small batches, so every piece is slightly unique.",
	"Pairs well with the rest of the collection.",
	"Backed by a two-year warranty.",
	"Responsibly sourced materials and low-waste packaging.",
	"A customer favorite for its comfort and easy care.",
	"Spot clean only; keep out of direct sunlight to preserve the color.",
}

var (
	wattages     = []int{6, 9, 12, 15, 20, 40, 60}
	colorTemps   = []int{2700, 3000, 3500, 4000}
	threadCounts = []int{200, 300, 400, 600, 800}
)
