package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/homegoods/storefront/resolvers"
)

// cpuMeter reads the CPU time used so far by this process (the server runs in it, through
// run) and by the PostgreSQL backends serving the database: together, what an operation
// costs the machine, whatever else runs on it and however long it waits.
type cpuMeter struct {
	db *pgx.Conn // a connection of its own, left out of the reading
}

func (m cpuMeter) read(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rows, err := m.db.Query(context.Background(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		tb.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		tb.Fatal(err)
	}
	for _, pid := range pids {
		total += processCPU(pid)
	}
	return total
}

// processCPU is the user and system time of a process from /proc/<pid>/stat (0 when it has
// gone), in clock ticks of 10 ms.
func processCPU(pid int32) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which may hold spaces, in parentheses.
	fields := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// costCase is one class of field: query selects copies of it, base the same without them
// (and without variables); fields is how many copies query has more.
type costCase struct {
	name, query, base string
	vars              map[string]any
	fields            int
	token             string
}

// BenchmarkFieldCost measures the CPU time (server and PostgreSQL, on the uncached path:
// CACHE=false) of each class of field that the cost model prices (resolvers/cost.go), one
// request at a time against the real server on a catalog of 10,000 products. Each case
// alternates a query holding many copies of the field with the same query without them,
// and reports the difference per copy (cpu-µs/field), the price the server charges for
// one copy (units/field), and their ratio (cpu-µs/unit), which the prices aim to keep near
// the same value for every class.
func BenchmarkFieldCost(b *testing.B) {
	env := newTestEnv(b)
	env["CACHE"] = "false"
	env["RATE_LIMIT_PER_SECOND"] = "0"
	env["COMPLEXITY_LIMIT"] = "100000000"
	env["MAX_BODY_BYTES"] = "1048576"
	runCommand(b, env, "seed", "--products", "10000", "--seed", "7", "--orders", "2000")
	base, _ := startServer(b, env)
	s := shopOn(b, env, base)
	meter := cpuMeter{db: s.db}
	ids := s.productIDs(100)
	idsJSON, _ := json.Marshal(ids)

	for _, c := range fieldCostCases(string(idsJSON), s.merchandiser) {
		b.Run(c.name, func(b *testing.B) {
			priced := priceOf(b, c.query, c.vars) - priceOf(b, c.base, nil)
			s.must(c.token, c.query, c.vars) // warm: plans and connections
			var withFields, without time.Duration
			b.ResetTimer()
			for range b.N {
				start := meter.read(b)
				s.must(c.token, c.query, c.vars)
				mid := meter.read(b)
				s.must(c.token, c.base, nil)
				withFields += mid - start
				without += meter.read(b) - mid
			}
			perField := float64((withFields - without).Microseconds()) / float64(b.N*c.fields)
			b.ReportMetric(perField, "cpu-µs/field")
			b.ReportMetric(float64(priced)/float64(c.fields), "units/field")
			b.ReportMetric(perField*float64(c.fields)/float64(priced), "cpu-µs/unit")
		})
	}
}

func priceOf(tb testing.TB, query string, vars map[string]any) int {
	tb.Helper()
	p, err := resolvers.Price(query, "", vars)
	if err != nil {
		tb.Fatalf("price of %s: %v", query, err)
	}
	return p
}

// aliases is n copies of field, each under an alias, with %d in field replaced by its
// number.
func aliases(n int, field string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "a%d: %s\n", i, strings.ReplaceAll(field, "%d", strconv.Itoa(i)))
	}
	return b.String()
}

func fieldCostCases(ids, merchandiser string) []costCase {
	var idVars map[string]any
	_ = json.Unmarshal([]byte(`{"ids":`+ids+`}`), &idVars)
	words := []string{"oak", "table", "lamp", "chair", "walnut", "sofa", "desk", "rug", "shelf", "bed"}
	search := func(i int) string {
		return fmt.Sprintf(`search(query: %q, first: 20) { totalCount edges { node { id name price { amount } } highlights { field fragments } } facets { key values { value label count } } }`, words[i%len(words)])
	}
	var searches, suggests strings.Builder
	for i := range 10 {
		fmt.Fprintf(&searches, "s%d: %s\n", i, search(i))
		fmt.Fprintf(&suggests, "g%d: suggest(prefix: %q, first: 8) { text product { id name } }\n", i, words[i][:2])
	}
	const page = `products(first: 20) { edges { node { id sku name price { amount currency } category { id name } brand { id name } availability { inStock available } } } }`
	return []costCase{
		{name: "scalar field", fields: 100 * 20,
			query: `{ products(first: 100) { edges { node { id ` + aliases(20, "name") + ` } } } }`,
			base:  `{ products(first: 100) { edges { node { id } } } }`},
		{name: "object by id (nodes)", fields: 100, vars: idVars,
			query: `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, base: `{ __typename }`},
		{name: "product's loaded objects", fields: 100 * 3,
			query: `{ products(first: 100) { edges { node { id category { id } brand { id } availability { available } } } } }`,
			base:  `{ products(first: 100) { edges { node { id } } } }`},
		{name: "page of products", fields: 10,
			query: `{ ` + aliases(10, "products(first: 1, filter: {minPrice: \"%d\"}) { edges { node { id } } }") + ` }`,
			base:  `{ __typename }`},
		{name: "total count", fields: 10,
			query: `{ ` + aliases(10, "products(first: 1, filter: {minPrice: \"%d\"}) { totalCount }") + ` }`,
			base:  `{ ` + aliases(10, "products(first: 1, filter: {minPrice: \"%d\"}) { edges { node { id } } }") + ` }`},
		{name: "shopper's page of 20", fields: 5, query: `{ ` + aliases(5, page) + ` }`, base: `{ __typename }`},
		{name: "search with facets", fields: 10, query: `{ ` + searches.String() + ` }`, base: `{ __typename }`},
		{name: "suggest", fields: 10, query: `{ ` + suggests.String() + ` }`, base: `{ __typename }`},
		{name: "category tree", fields: 5,
			query: `{ ` + aliases(5, "categories { id name productCount children { id name children { id name } } }") + ` }`,
			base:  `{ __typename }`},
		{name: "sales report", fields: 5, token: merchandiser,
			query: `{ ` + aliases(5, `salesAnalytics(from: "2026-01-1%dT00:00:00Z", to: "2026-02-01T00:00:00Z", bucket: DAY, groupBy: CATEGORY) { series { points { revenue orders } } totals { revenue } }`) + ` }`,
			base:  `{ __typename }`},
		{name: "typename (parse, validate)", fields: 500, query: `{ ` + aliases(500, "__typename") + ` }`, base: `{ __typename }`},
		{name: "cart created", fields: 5, query: `mutation { ` + aliases(5, "createCart { token }") + ` }`, base: `{ __typename }`},
	}
}
