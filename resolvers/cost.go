package resolvers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/homegoods/storefront/graph"
)

// An operation's cost is what it will make the servers do, in units of about ten
// microseconds of CPU (the API server, PostgreSQL and Redis together, on the uncached path),
// so that a client's rate limit, which charges costs, is a budget of CPU time. Each field
// of the operation costs its price: a plain field of an object already at hand costs 1; a
// field that goes to a database or search engine costs what BenchmarkFieldCost measured it
// to cost; a list multiplies what each of its items selects by the number of items it may
// return. Aliases and repeated fields are each charged: every one of them runs.
//
// The walk prices each fragment once however often it is spread, and stops once the cost
// exceeds the limit, so that pricing itself stays cheap: gqlgen's own complexity walk
// follows every spread, and a document of 25 fragments spreading the next one twice took
// it minutes.

// price is what one field costs.
type price struct {
	// base is the field's own work, charged once; 1 when zero.
	base int
	// each is charged for every item the field may return, on top of what the item
	// selects.
	each int
	// sizedBy names the argument that says how many items the field may return: an Int
	// (first, last), or a list whose length counts (ids). Absent or null, the field is
	// taken to return size items.
	sizedBy []string
	// size is the number of items of a list field when no argument says; 0 for a field that
	// is no list.
	size int
	// sizedFields, for a connection, are the fields of its result that hold the items
	// (edges): they are charged once per item, and the rest of the result (totalCount,
	// facets) once.
	sizedFields []string
}

// Prices in units of about 5 µs of CPU, measured by BenchmarkFieldCost (make bench) on a
// catalog of 10,000 products and rounded up; the figures are in the README. Fields not
// listed cost 1 plus what they select: about what a field of an object at hand costs.
const (
	// costLoad is an object fetched by id through a dataloader: its share of a batched
	// statement, decoding, and the field's own execution (55 µs measured).
	costLoad = 10
	// costList is a statement of its own that lists rows: a page of products or orders
	// (800 µs).
	costList = 160
	// costCount counts every product matching a filter (4 ms).
	costCount = 800
	// costSearch is a search with its facets on PostgreSQL full-text search, the fallback
	// engine, so that it is the price whichever engine answers (12 ms with a page of 20,
	// highlights and every facet, which are priced besides).
	costSearch = 1600
	// costSuggest is one autocomplete lookup (4.5 ms, besides its products).
	costSuggest = 850
	// costAnalytics is a sales report read from the rollups (2 ms).
	costAnalytics = 400
	// costWrite is a mutation's transaction: row locks, the outbox row, the commit
	// (550 µs for a new cart; more for most).
	costWrite = 200
	// costCheckout is the checkout's transaction: prices re-validated, stock reserved
	// across warehouses, the order and its lines written.
	costCheckout = 1500
	// documentBytesPerUnit prices parsing and validating the document itself.
	documentBytesPerUnit = 32
)

// pageSizers size connections and ranked lists.
var pageSizers = []string{"first", "last"}

// edges are the items of a connection.
var edges = []string{"edges"}

var prices = map[string]price{
	"Query.node":             {base: costLoad},
	"Query.nodes":            {each: costLoad, sizedBy: []string{"ids"}, size: MaxNodes},
	"Query.product":          {base: costLoad},
	"Query.products":         {base: costList, sizedBy: pageSizers, size: 20, sizedFields: edges},
	"Query.categories":       {base: costList, size: 10},
	"Query.category":         {base: costLoad},
	"Query.brands":           {base: costList, size: 50},
	"Query.warehouses":       {base: costList, size: 10},
	"Query.trendingProducts": {base: costList, each: costLoad, sizedBy: pageSizers, size: 10},
	"Query.bestsellers":      {base: costList, each: costLoad, sizedBy: pageSizers, size: 10},
	"Query.search":           {base: costSearch, sizedBy: pageSizers, size: 20, sizedFields: edges},
	"Query.suggest":          {base: costSuggest, sizedBy: pageSizers, size: 8},
	"Query.searchInsights":   {base: costList, sizedBy: pageSizers, size: 20},
	"Query.synonymRules":     {base: costList, size: 20},
	"Query.queryRules":       {base: costList, size: 20},
	"Query.relevanceWeights": {base: costLoad},
	"Query.cart":             {base: costList},
	"Query.myCart":           {base: costList},
	"Query.myOrders":         {base: costList, sizedBy: pageSizers, size: 20, sizedFields: edges},
	"Query.order":            {base: costLoad},
	"Query.orders":           {base: costList, sizedBy: pageSizers, size: 20, sizedFields: edges},
	"Query.inventoryLevels":  {base: costList, size: 10},
	"Query.stockMovements":   {base: costList, sizedBy: pageSizers, size: 50},
	"Query.salesAnalytics":   {base: costAnalytics},
	"Query.topProducts":      {base: costAnalytics, each: costLoad, sizedBy: pageSizers, size: 10},
	"Query.session":          {base: costLoad},

	"Product.category":                 {base: costLoad},
	"Product.brand":                    {base: costLoad},
	"Product.availability":             {base: costLoad},
	"Product.inventory":                {base: costLoad, size: 5},
	"Product.attributeList":            {size: 10},
	"Category.parent":                  {base: costLoad},
	"Category.children":                {base: costLoad, size: 5},
	"Category.ancestors":               {base: costLoad, size: 3},
	"Category.productCount":            {base: costLoad},
	"ProductConnection.totalCount":     {base: costCount},
	"Cart.lines":                       {size: 10},
	"CartLine.product":                 {base: costLoad},
	"Order.lines":                      {base: costLoad, size: 10},
	"OrderLine.product":                {base: costLoad},
	"OrderLine.allocations":            {size: 5},
	"Allocation.warehouse":             {base: costLoad},
	"StockMovement.warehouse":          {base: costLoad},
	"InventoryLevel.warehouse":         {base: costLoad},
	"InventoryAlert.product":           {base: costLoad},
	"InventoryAlert.warehouse":         {base: costLoad},
	"SearchResult.facets":              {size: 10},
	"Facet.values":                     {size: 20},
	"SearchEdge.node":                  {base: costLoad},
	"SearchEdge.highlights":            {size: 4},
	"Highlight.fragments":              {size: 3},
	"Suggestion.product":               {base: costLoad},
	"QueryRule.pinnedProducts":         {base: costLoad, size: 5},
	"QueryRule.boosts":                 {size: 5},
	"SearchBoost.brand":                {base: costLoad},
	"SearchBoost.category":             {base: costLoad},
	"SearchInsights.topQueries":        {size: 20},
	"SearchInsights.zeroResultQueries": {size: 20},
	"SynonymRule.terms":                {size: 5},
	"SynonymRule.synonyms":             {size: 5},
	"SalesReport.series":               {size: 20},
	"SalesSeries.points":               {size: 31},
	"SalesSeries.category":             {base: costLoad},
	"SalesSeries.brand":                {base: costLoad},
	"SalesSeries.product":              {base: costLoad},
	"ProductSales.product":             {base: costLoad},

	// Other mutations cost costWrite.
	"Mutation.checkout":     {base: costCheckout},
	"Mutation.startSession": {base: costLoad},
	"Mutation.endSession":   {base: costLoad},
}

// priceOf is the price of a field of object, false for a plain field. Every mutation is at
// least a transaction.
func priceOf(object, field string) (price, bool) {
	if p, ok := prices[object+"."+field]; ok {
		return p, true
	}
	if object == "Mutation" {
		return price{base: costWrite}, true
	}
	return price{}, false
}

// cost is the price of the field given its arguments and what its selection costs: child
// for a plain field or list, or, for a connection, scaled (its items' fields, already
// multiplied by items) and child (the rest).
func (p price) cost(args map[string]any, child int) int {
	base := max(p.base, 1)
	if !p.isList() || len(p.sizedFields) > 0 {
		return addCost(base, child)
	}
	return addCost(base, mulCost(p.items(args), addCost(p.each, child)))
}

func (p price) isList() bool { return p.size > 0 || len(p.sizedBy) > 0 }

// items is how many items a list field may return, by its sizing argument: never below 1
// (an empty page still runs) nor above the most any resolver accepts, which refuses more.
func (p price) items(args map[string]any) int {
	n := p.size
	for _, name := range p.sizedBy {
		if v, ok := args[name].([]any); ok {
			n = len(v)
			break
		}
		if v, ok := intValue(args[name]); ok {
			n = v
			break
		}
	}
	return min(max(n, 1), maxListArgument)
}

// maxListArgument is the most items any sizing argument may ask for (first, last, ids).
const maxListArgument = 100

// MaxNodes is the most ids Query.nodes takes, like first on a connection.
const MaxNodes = maxListArgument

func intValue(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int32:
		return int(n), true
	case int64:
		return int(min(max(n, math.MinInt32), math.MaxInt32)), true
	case float64:
		return int(min(max(n, math.MinInt32), math.MaxInt32)), true
	case json.Number:
		i, err := n.Int64()
		return int(min(max(i, math.MinInt32), math.MaxInt32)), err == nil
	}
	return 0, false
}

// maxCost saturates sums and products: no document can overflow its way under the limit.
const maxCost = math.MaxInt32

func addCost(a, b int) int { return min(a+b, maxCost) }

func mulCost(a, b int) int {
	if a != 0 && b > maxCost/a {
		return maxCost
	}
	return a * b
}

// pricer walks one operation.
type pricer struct {
	vars      map[string]any
	fragments ast.FragmentDefinitionList
	priced    map[fragmentScale]int // fragment costs, each computed once per scale
	limit     int
}

// scale multiplies the fields of one selection set that hold a connection's items.
type scale struct {
	fields string // the names, comma-separated; "" for none
	items  int
}

func (s scale) of(name string) int {
	if s.fields != "" && slices.Contains(strings.Split(s.fields, ","), name) {
		return s.items
	}
	return 1
}

type fragmentScale struct {
	name string
	scale
}

// operationCost prices op: its fields, and its document's parsing. A result above limit
// only says that it exceeds it.
func operationCost(doc *ast.QueryDocument, op *ast.OperationDefinition, vars map[string]any, limit int) int {
	p := pricer{vars: vars, fragments: doc.Fragments, priced: map[fragmentScale]int{}, limit: limit}
	document := 0
	if op.Position != nil && op.Position.Src != nil {
		document = len(op.Position.Src.Input) / documentBytesPerUnit
	}
	return addCost(document, p.selections(op.SelectionSet, scale{}))
}

func (p *pricer) selections(set ast.SelectionSet, sc scale) int {
	total := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			total = addCost(total, mulCost(sc.of(s.Name), p.field(s)))
		case *ast.InlineFragment:
			total = addCost(total, p.selections(s.SelectionSet, sc))
		case *ast.FragmentSpread:
			total = addCost(total, p.fragment(fragmentScale{s.Name, sc}))
		}
		if total > p.limit {
			return total // over the limit: the rest changes nothing
		}
	}
	return total
}

func (p *pricer) fragment(key fragmentScale) int {
	if c, ok := p.priced[key]; ok {
		return c
	}
	p.priced[key] = 0 // a cycle (refused by validation) costs nothing more
	c := 0
	if f := p.fragments.ForName(key.name); f != nil {
		c = p.selections(f.SelectionSet, key.scale)
	}
	p.priced[key] = c
	return c
}

func (p *pricer) field(f *ast.Field) int {
	switch {
	case f.Name == "__typename":
		return 1
	case strings.HasPrefix(f.Name, "__"):
		return 0 // introspection: served to the playground only
	case f.ObjectDefinition == nil:
		return 1
	}
	pr, ok := priceOf(f.ObjectDefinition.Name, f.Name)
	if !ok {
		return addCost(1, p.selections(f.SelectionSet, scale{}))
	}
	args := f.ArgumentMap(p.vars)
	sc := scale{}
	if len(pr.sizedFields) > 0 {
		sc = scale{fields: strings.Join(pr.sizedFields, ","), items: pr.items(args)}
	}
	return pr.cost(args, p.selections(f.SelectionSet, sc))
}

// costLimit prices every operation before it runs (see operationCost), refuses those that
// cost more than limit with COMPLEXITY_LIMIT_EXCEEDED, and keeps the price for the rate
// limits, which charge it (OperationCost).
type costLimit struct{ limit int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = costLimit{}

func (costLimit) ExtensionName() string                   { return "CostLimit" }
func (costLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (c costLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	cost := operationCost(oc.Doc, oc.Operation, oc.Variables, c.limit)
	oc.Stats.SetExtension(costStatsKey, cost)
	if cost > c.limit {
		err := gqlerror.Errorf("operation costs more than the limit of %d", c.limit)
		err.Extensions = map[string]any{"code": "COMPLEXITY_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}

const costStatsKey = "CostLimit"

// ParsingCost is what a request costs before its document is parsed, when its document is
// too long to be kept parsed (see maxCachedDocument) or its variables hold many values: the
// document at documentBytesPerUnit, each variable value as a few bytes of it. Rate limits
// charge it before parsing (cache.ComplexityRateLimit.ChargeBeforeParsing), so that a client
// sending megabytes that the parser, the validator or the cost limit refuses pays for them;
// ordinary requests cost nothing here and are charged their operation's price only.
func ParsingCost(params *graphql.RawParams) int {
	values := variableValues(params.Variables)
	if len(params.Query) <= maxCachedDocument && values <= maxFreeVariableValues {
		return 0
	}
	return (len(params.Query) + bytesPerVariableValue*values) / documentBytesPerUnit
}

const (
	// maxFreeVariableValues is the most values a request's variables hold before they are
	// charged: a page of ids, a cart's lines.
	maxFreeVariableValues = 200
	// bytesPerVariableValue is about what a value weighs in JSON (an id is 40 to 60 bytes).
	bytesPerVariableValue = 16
)

// variableValues counts the values in v: scalars, and the items of lists and objects.
func variableValues(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := 0
		for _, item := range v {
			n += 1 + variableValues(item)
		}
		return n
	case []any:
		n := 0
		for _, item := range v {
			n += 1 + variableValues(item)
		}
		return n
	}
	return 0
}

// OperationCost is the price of the operation of ctx, 0 before it was priced.
func OperationCost(ctx context.Context) int {
	if !graphql.HasOperationContext(ctx) {
		return 0
	}
	cost, _ := graphql.GetOperationContext(ctx).Stats.GetExtension(costStatsKey).(int)
	return cost
}

// Price is what the server charges for the operation named operationName ("" for the only
// one) of doc with vars: the figure rate limits charge and COMPLEXITY_LIMIT bounds. It is
// for clients' tests and benchmarks; the server prices operations as they arrive.
func Price(doc, operationName string, vars map[string]any) (int, error) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	parsed, errs := gqlparser.LoadQuery(schema, doc)
	if len(errs) > 0 {
		return 0, errs
	}
	op := parsed.Operations.ForName(operationName)
	if op == nil {
		return 0, fmt.Errorf("no operation %q in the document", operationName)
	}
	coerced, err := validator.VariableValues(schema, op, vars)
	if err != nil {
		return 0, err
	}
	return operationCost(parsed, op, coerced, maxCost), nil
}
