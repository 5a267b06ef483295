package model

// Sale is one product line of an order, as the rankings count it.
type Sale struct {
	ProductID string
	// CategoryIDs are the product's category and all its ancestors: a sale counts in each of
	// their rankings, and in the ranking of the whole catalog.
	CategoryIDs []string
	Units       int
}

// Ranked is one product of a ranking, best first.
type Ranked struct {
	ProductID string
	// Score is the units sold for bestsellers. For trending products it is the decayed units
	// as of now: each unit counts 1 when just sold, 1/2 one half-life later, 1/4 after two...
	Score float64
}

// SalesTotal is what a product sold in one category path, as the rankings count it when
// they are rebuilt from the orders: Units in all, and Recent, the units decayed to the
// moment of the rebuild by the trending half-life.
type SalesTotal struct {
	ProductID   string
	CategoryIDs []string // the category and its ancestors
	Units       int
	Recent      float64
}

// RankingHistory is what the rankings are rebuilt from: the totals, and every category
// whose rankings the rebuild replaces.
type RankingHistory struct {
	Categories []string
	Totals     []SalesTotal
}
