#!/usr/bin/env bash
# bench.sh benchmarks the catalog API (`make bench`): it seeds a private PostgreSQL cluster,
# starts the server on loopback in each cache mode in turn, drives it with tools/loadgen and
# prints a markdown table, also written to .run/bench/catalog.md. Modes:
#   postgres         CACHE=false: every load goes to PostgreSQL (the uncached path)
#   redis            Redis read-through cache, no in-process tier (CACHE_L1_SIZE=0)
#   redis+L1         Redis with the in-process tier: the default configuration
# Scenarios, each after the { __typename } ceiling of the same server (the GraphQL ceiling of
# this machine, no database work); every request of a scenario asks for the same thing, so
# these measure one hot page, not a mix (the mixed workload below does that):
#   redis+L1 (the default configuration) runs the pages of the performance issue: a product
#     page by slug (name, description, price, brand, category with its ancestors for the
#     breadcrumbs, attributes, availability), the same by id, a product by id with name and
#     price only, plus its category and ancestors' names, the first page of 20 products with
#     price, brand and availability, a word search with every facet (PostgreSQL engine) and
#     a cart of 2 lines;
#   postgres and redis run product by id and the page of 20.
# For each scenario: the ratio of its throughput to the ceiling's; the cache's hit ratio
# and backend round trips per request (from the server's /metrics, read before and after);
# the CPU milliseconds per request of the server, PostgreSQL and Redis (from /proc); and a
# CPU and an allocation profile of the server over the measured window (its pprof on
# DEBUG_ADDR), written to .run/bench/profiles/ with a one-line summary of where the server's
# time went. Rate limits are off: one load generator stands for many clients. Then Go
# benchmarks: the stale-read window after a change with three server instances on one
# Redis, checkout and add-to-cart throughput, and the read-through cache's hit path.
# Then search (search_bench): at each size of BENCH_SEARCH_PRODUCTS ("10000 100000"), the
# PostgreSQL engine and then Elasticsearch (the OpenSearch node of scripts/search.sh on port
# 9251, the index built by the server from PostgreSQL at start) answer (a) a two-word query,
# (b) a misspelled one and (c) a category browse with two attribute facets selected, each
# with every facet; over the largest catalog also (d) the faceted browse of the whole catalog
# (no words, no filter, every facet) at concurrency 1, 4 and 16, answered from the popular
# searches' memo (SEARCH_CACHE_TTL) and then uncached, beside the engine alone at the same
# concurrency (BenchmarkPostgresSearch, BenchmarkElasticSearch: the engine called as the
# server calls it); then a full reindex of the largest catalog, the sync lag, and the lag of
# single changes committed behind a repricing of 10,000 products (Go benchmarks of search/).
# Then the mixed workload (mix_bench, BENCH_PARTS=mix): the storefront's open-loop mix of the
# case study's peak (tools/loadgen -mix: product pages by slug, category browses, searches,
# cart operations, inventory checks and orders, each class against the seed's p95), stepped
# through BENCH_MIX_RATES until a class misses, then halving the gap to the last rate that
# held (loadgen -refine), over the 3,000-product catalog of make run and over 100,000
# products, with each search engine, after the { __typename } ceiling of the same server;
# every step's row gives the load average at its end.
# Then abuse (abuse_bench), with rate limits on (5,000 units a second, burst 25,000, per
# client named by X-Forwarded-For): an ordinary shopper (one client, a page of 20 products
# every 250 ms) alone, then beside two abusive clients that spend their whole budget (4
# workers each, waiting out RATE_LIMITED as told: aliased suggests, and aliased searches with
# every facet, each as many as one operation may cost), then beside both and three memory
# probes that send what the edge refuses (2,500 aliased suggests, nodes of 12,000 ids, a
# megabyte of text that is no GraphQL), 4 workers each. It reports the shopper's p95 against
# its idle p95 (the target: within 3x under the two abusive clients) and the server's peak
# RSS over the whole part (the target: under 200 MB), with the { __typename } ceiling of
# the same server first.
# Load generator, server and PostgreSQL share this machine's CPUs: compare runs made on the
# same machine only, and read the load average printed with each part.
#
# Environment: BENCH_PARTS ("catalog search mix abuse") what to run; BENCH_MIX_RATES the mix's steps
# (operations per second); BENCH_MIX_SIZES ("3000 100000") its catalogs; BENCH_ABUSE_DURATION (30s)
# the shopper's measured time in each phase of abuse; BENCH_PRODUCTS (10000) products to seed into an empty database,
# BENCH_CONCURRENCY (16) concurrent clients, BENCH_DURATION (10s) measured time per scenario.
# The cluster in .run/bench-pg is kept between runs (stopped, not deleted), so the seed only
# happens once; `scripts/pg.sh destroy .run/bench-pg` starts afresh, say after changing
# BENCH_PRODUCTS. A fast Redis (nothing on disk, so every run starts cold) runs in
# .run/bench-redis on 127.0.0.1:6382 for the length of the run; its URL is BENCH_REDIS_URL.
set -euo pipefail
shopt -s inherit_errexit
# The table's numbers use a decimal dot whatever the caller's locale.
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# TEST_PORT_OFFSET (default 0) moves every port, as in scripts/test.sh.
readonly OFFSET=${TEST_PORT_OFFSET:-0}
readonly PG_DIR=.run/bench-pg PG_PORT=$((5435 + OFFSET))
readonly REDIS_DIR=.run/bench-redis REDIS_PORT=$((6382 + OFFSET))
readonly ADDR=127.0.0.1:$((8081 + OFFSET))
readonly DEBUG=127.0.0.1:$((6061 + OFFSET))
readonly OUT_DIR=.run/bench PROFILES=.run/bench/profiles
readonly REPORT=$OUT_DIR/catalog.md SERVER_LOG=$OUT_DIR/server.log
readonly PRODUCTS=${BENCH_PRODUCTS:-10000}
# Not readonly: a scenario may run at another concurrency (CONCURRENCY=4 scenario ...).
CONCURRENCY=${BENCH_CONCURRENCY:-16}
readonly DURATION=${BENCH_DURATION:-10s}
readonly WARMUP=3s

readonly FIELDS='id sku name price { amount currency } category { id name } brand { id name } availability { inStock available }'
readonly Q_TYPENAME='{ __typename }'
readonly Q_PRODUCT="query(\$id: ID!) { product(id: \$id) { $FIELDS } }"
readonly Q_PAGE="{ products(first: 20) { edges { node { $FIELDS } } } }"
# The pages of the performance issue.
readonly PAGE_FIELDS='id name description price { amount currency } brand { name } category { name ancestors { name slug } } attributeList { key text } availability { inStock available }'
readonly Q_BY_SLUG="query(\$s: String!) { product(slug: \$s) { $PAGE_FIELDS } }"
readonly Q_BY_ID="query(\$id: ID!) { product(id: \$id) { $PAGE_FIELDS } }"
readonly Q_NAME_PRICE="query(\$id: ID!) { product(id: \$id) { name price { amount currency } } }"
readonly Q_WITH_CATEGORY="query(\$id: ID!) { product(id: \$id) { name price { amount currency } category { name ancestors { name } } } }"
readonly Q_LIST='{ products(first: 20) { edges { node { id name price { amount currency } brand { name } availability { inStock available } } } } }'
readonly Q_CART="query(\$id: ID!) { cart(id: \$id) { id totalQuantity subtotal { amount currency } lines { quantity product { name } unitPrice { amount } lineTotal { amount } } } }"

# Search: the page of 20 with every facet and the price range, as a search page shows them.
readonly SEARCH_FIELDS='totalCount backend edges { node { id name price { amount } } highlights { field fragments } } facets { key label values { value label count selected } } priceRange { min max }'
readonly Q_SEARCH="query(\$q: String, \$f: SearchFilter) { search(query: \$q, filter: \$f, first: 20) { $SEARCH_FIELDS } }"
readonly SEARCH_SIZES=${BENCH_SEARCH_PRODUCTS:-10000 100000}
# BENCH_PARTS picks what runs: "catalog search mix abuse" (the default), or any of them.
readonly PARTS=${BENCH_PARTS:-catalog search mix abuse}
readonly ABUSE_DURATION=${BENCH_ABUSE_DURATION:-30s}
readonly SEARCH_DIR=.run/bench-search SEARCH_PORT=$((9251 + OFFSET))
readonly MIX_RATES=${BENCH_MIX_RATES:-200,400,800,1200,1600,2000,2400,2800}
readonly MIX_SIZES=${BENCH_MIX_SIZES:-3000 100000}

server_pid=""
failed=""
reported=""
in_search=""
rows=()
catalog_rows=()
search_rows=()
rss_notes=()
ceiling=""
start_load=""
profilers=()
abuse_rows=()
abuse_notes=()
client_pids=()

# cleanup runs on every exit, failure included: the server, Redis and the cluster must not
# outlive the benchmark.
cleanup() {
	local rc=$?
	stop_clients
	stop_server
	# A run that fails part way still reports what it measured.
	if ((rc != 0)) && [ -z "$reported" ] && ((${#rows[@]} + ${#catalog_rows[@]} > 0)); then
		if [ -n "$in_search" ]; then search_rows=("${rows[@]}") rows=("${catalog_rows[@]}"); fi
		note "the run failed: the report holds what was measured before"
		report >/dev/null || true
	fi
	scripts/search.sh stop "$SEARCH_DIR" || note "could not stop the search node in $SEARCH_DIR"
	scripts/redis.sh stop "$REDIS_DIR" || note "could not stop Redis in $REDIS_DIR"
	scripts/pg.sh stop "$PG_DIR" || note "could not stop the cluster in $PG_DIR"
}

stop_server() {
	[ -n "$server_pid" ] || return 0
	# Graceful shutdown gets 15 s; a server stuck past that is killed, so that the cluster
	# can still stop.
	stop_pid "the server" "$server_pid" 15 || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
}

# stop_clients ends the load generators still running in the background.
stop_clients() {
	local pid
	for pid in "${client_pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	client_pids=()
}

build() {
	mkdir -p bin "$OUT_DIR"
	go build -o bin/storefront .
	go build -o bin/loadgen ./tools/loadgen
}

start_database() {
	scripts/pg.sh start "$PG_DIR" "$PG_PORT" fast
	scripts/pg.sh createdb "$PG_PORT" bench
	DATABASE_URL=$(scripts/pg.sh url "$PG_PORT" bench)
	export DATABASE_URL
	bin/storefront migrate
	bin/storefront seed --products "$PRODUCTS" --seed 7 --if-empty
}

start_redis() {
	scripts/redis.sh start "$REDIS_DIR" "$REDIS_PORT" fast
	BENCH_REDIS_URL=$(scripts/redis.sh url "$REDIS_PORT")
	export BENCH_REDIS_URL
}

# start_server [VAR=value...] starts the server with extra environment.
start_server() {
	# Another server on the port would be benchmarked in place of ours.
	claim_port "${ADDR#*:}"
	env HTTP_ADDR=$ADDR DEBUG_ADDR=$DEBUG LOG_LEVEL=warn RATE_LIMIT_PER_SECOND=0 "$@" bin/storefront serve >"$SERVER_LOG" 2>&1 &
	server_pid=$!
	local rc=0
	WAIT_PID=$server_pid wait_until 30 0.2 curl -sf -o /dev/null --max-time 2 "http://$ADDR/readyz" || rc=$?
	case $rc in
	0) ;;
	2) server_failed "the server exited while starting" ;;
	*) server_failed "the server was not ready within 30 s" ;;
	esac
}

server_failed() {
	show_log "$SERVER_LOG"
	die "$1 (log: $SERVER_LOG)"
}

# first_product_id prints the id of the first product of the default sort.
first_product_id() {
	graphql '{"query":"{ products(first: 1) { edges { node { id } } } }"}' '"id":"([^"]+)"'
}

# counters prints the server's totals of cache hits (in-process and backend), misses,
# backend round trips and GraphQL requests, from /metrics.
counters() {
	curl -sf --max-time 5 "http://$ADDR/metrics" | awk '
		/^storefront_cache_l1_hits_total/ { hits += $2 }
		/^storefront_cache_hits_total/ { hits += $2 }
		/^storefront_cache_misses_total/ { misses += $2 }
		/^storefront_cache_round_trips_total/ { trips += $2 }
		/^storefront_graphql_requests_total/ { requests += $2 }
		END { printf "%d %d %d %d\n", hits, misses, trips, requests }'
}

# scenario MODE LABEL QUERY [VARIABLES] runs loadgen and adds a table row, profiling the
# server over the measured window. A failing scenario still gets its row (with its error
# count) and fails the benchmark at the end. The first scenario of a server is its ceiling,
# { __typename }: the other rows give their throughput as a share of it.
scenario() {
	local mode=$1 label=$2 query=$3 variables=${4:-} out key values=() before after cpu_before cpu_after ratio prof
	local args=(-url "http://$ADDR/graphql" -name "$label" -query "$query"
		-c "$CONCURRENCY" -d "$DURATION" -warmup "$WARMUP" -json)
	if [ -n "$variables" ]; then args+=(-variables "$variables"); fi
	note "running: $mode / $label (load average $(load_average))"
	prof="$PROFILES/$(slug "$mode-$label")"
	before=$(counters)
	cpu_before=$(cpu_ticks)
	profile "$prof"
	out=$(bin/loadgen "${args[@]}") || failed=1
	cpu_after=$(cpu_ticks)
	after=$(counters)
	wait_profiles
	if [ -z "$out" ]; then
		rows+=("| $mode | $label | n/a | n/a | n/a | n/a | n/a | n/a | n/a | loadgen failed | | | | |")
		return
	fi
	for key in rps p50_ms p95_ms p99_ms max_ms errors; do
		values+=("$(field "$out" "$key")")
	done
	if [ "$query" = "$Q_TYPENAME" ]; then ceiling=${values[0]}; fi
	ratio=$(awk -v r="${values[0]}" -v c="$ceiling" 'BEGIN { if (c > 0) printf "%.0f%%", 100 * r / c; else printf "-" }')
	rows+=("$(printf '| %s | %s | %.0f | %s | %.2f | %.2f | %.2f | %.2f | %d | %s | %s | %s |' "$mode" "$label" "${values[0]}" "$ratio" \
		"${values[@]:1}" "$(cache_figures "$before" "$after")" "$(cpu_per_request "$cpu_before" "$cpu_after" "$(field "$out" requests)")" \
		"$(where_time_goes "$prof")")")
}

# slug TEXT makes a file name of a scenario's label.
slug() { tr -c 'a-zA-Z0-9+\n' '-' <<<"$1" | tr -s '-'; }

load_average() { cut -d' ' -f1-3 /proc/loadavg; }

# profile PREFIX fetches the server's CPU and allocation profiles over the measured window
# of the scenario about to start, in the background (wait_profiles waits for them).
profile() {
	local secs=${DURATION%s} warm=${WARMUP%s}
	mkdir -p "$PROFILES"
	(sleep "$warm" && curl -sf --max-time $((secs + 30)) -o "$1.cpu.pprof" "http://$DEBUG/debug/pprof/profile?seconds=$secs") &
	profilers+=($!)
	(sleep "$warm" && curl -sf --max-time $((secs + 30)) -o "$1.allocs.pprof" "http://$DEBUG/debug/pprof/allocs?seconds=$secs") &
	profilers+=($!)
}

wait_profiles() {
	local pid
	for pid in "${profilers[@]}"; do wait "$pid" || true; done
	profilers=()
}

# where_time_goes PREFIX sums up the server's CPU profile: the share of its samples spent in
# the code of GraphQL execution (gqlgen and the generated executor), the resolvers and the
# project's packages, the PostgreSQL and Redis clients, JSON, net/http, the Go runtime
# (scheduler, allocation and garbage collector) and system calls.
where_time_goes() {
	[ -s "$1.cpu.pprof" ] || { echo "no profile" && return; }
	go tool pprof -top -nodecount=100000 bin/storefront "$1.cpu.pprof" 2>/dev/null | awk '
		$2 ~ /%$/ && NF >= 6 {
			pct = $2 + 0; name = $6
			if (name ~ /^github.com\/99designs\/gqlgen\// || name ~ /^github.com\/homegoods\/storefront\/graph\./ || name ~ /^github.com\/vektah\//) k = "gqlgen"
			else if (name ~ /^github.com\/jackc\//) k = "pgx"
			else if (name ~ /^github.com\/redis\//) k = "redis"
			else if (name ~ /^github.com\/homegoods\//) k = "app"
			else if (name ~ /^encoding\/json\./) k = "json"
			else if (name ~ /^net\/http\./ || name ~ /^net\/textproto\./ || name ~ /^bufio\./) k = "http"
			else if (name ~ /[Ss]yscall/) k = "syscalls"
			else if (name ~ /^runtime\./ || name ~ /^internal\/runtime\// || name ~ /^gcWriteBarrier/ || name ~ /^aeshash/ || name ~ /^mem(clr|move|eqbody)/) k = "runtime"
			else k = "other"
			share[k] += pct
		}
		END {
			n = split("gqlgen app pgx redis json http runtime syscalls other", keys, " ")
			for (i = 1; i <= n; i++) printf "%s%s %.0f%%", (i > 1 ? ", " : ""), keys[i], share[keys[i]]
		}'
}

# cpu_ticks prints the CPU ticks used so far by the server, PostgreSQL (the postmaster and
# every backend) and Redis.
cpu_ticks() {
	local pg redis
	pg=$(head -1 "$(scripts/pg.sh datadir "$PG_DIR")/postmaster.pid" 2>/dev/null || true)
	redis=$(cat "$REDIS_DIR/redis.pid" 2>/dev/null || true)
	printf '%s %s %s\n' "$(ticks "$server_pid")" "$(ticks "$pg" $(pgrep -P "$pg" 2>/dev/null))" "$(ticks "$redis")"
}

# ticks PID... sums the user and system CPU ticks of the processes.
ticks() {
	local total=0 pid t
	for pid in "$@"; do
		t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
		total=$((total + t))
	done
	echo "$total"
}

# cpu_per_request BEFORE AFTER REQUESTS prints the CPU milliseconds per request of the
# server, PostgreSQL and Redis between two readings of cpu_ticks (warm-up included).
cpu_per_request() {
	awk -v b="$1" -v a="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {
		split(b, x, " "); split(a, y, " ")
		if (n <= 0) { printf "- | - | -"; exit }
		for (i = 1; i <= 3; i++) printf "%s%.3f", (i > 1 ? " | " : ""), 1000 * (y[i] - x[i]) / hz / n
	}'
}

# cache_figures BEFORE AFTER prints the hit ratio and backend round trips per request
# between two readings of counters (warm-up included, so misses of a cold start show).
cache_figures() {
	# shellcheck disable=SC2086 # the readings are four numbers each
	awk -v b="$1" -v a="$2" 'BEGIN {
		split(b, x, " "); split(a, y, " ")
		hits = y[1] - x[1]; misses = y[2] - x[2]; trips = y[3] - x[3]; requests = y[4] - x[4]
		if (hits + misses == 0) { printf "- | -"; exit }
		printf "%.1f%% | %.2f", 100 * hits / (hits + misses), (requests ? trips / requests : 0)
	}'
}

# field JSON KEY prints a number from loadgen's flat one-line JSON summary.
field() {
	local re="\"$2\":([-0-9.eE+]+)"
	[[ $1 =~ $re ]] || die "no $2 in loadgen output: $1"
	echo "${BASH_REMATCH[1]}"
}

peak_rss() {
	awk '/^VmHWM:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$server_pid/status"
}

# mode NAME PAGES [VAR=value...] runs the scenarios against a server started with that
# environment, then notes its peak RSS: with PAGES=issue the pages of the performance
# issue, else product by id and the page of 20.
mode() {
	local name=$1 pages=$2 id rss
	shift 2
	start_server "$@"
	id=$(first_product_id)
	scenario "$name" typename "$Q_TYPENAME"
	if [ "$pages" = issue ]; then
		issue_pages "$name" "$id"
	else
		scenario "$name" "product by id" "$Q_PRODUCT" "{\"id\":\"$id\"}"
		scenario "$name" "products page of 20" "$Q_PAGE"
	fi
	rss=$(peak_rss) || { rss="unknown: the server had exited" && failed=1; }
	rss_notes+=("$name: $rss")
	stop_server
}

# issue_pages MODE ID measures the pages of the performance issue on the running server.
issue_pages() {
	local mode=$1 id=$2 slug cart
	slug=$(graphql "{\"query\":\"query(\$id: ID!) { product(id: \$id) { slug } }\",\"variables\":{\"id\":\"$id\"}}" '"slug":"([^"]+)"')
	cart=$(two_line_cart)
	scenario "$mode" "product page by slug" "$Q_BY_SLUG" "{\"s\":\"$slug\"}"
	scenario "$mode" "product page by id" "$Q_BY_ID" "{\"id\":\"$id\"}"
	scenario "$mode" "product: name and price" "$Q_NAME_PRICE" "{\"id\":\"$id\"}"
	scenario "$mode" "... plus category and ancestors" "$Q_WITH_CATEGORY" "{\"id\":\"$id\"}"
	scenario "$mode" "products(first: 20)" "$Q_LIST"
	scenario "$mode" "search \"sofa\" with facets" "$Q_SEARCH" '{"q":"sofa"}'
	scenario "$mode" "cart of 2 lines" "$Q_CART" "{\"id\":\"$cart\"}"
}

# graphql BODY REGEX posts BODY and prints the first group of REGEX in the answer.
graphql() {
	local body
	body=$(curl -sSf --max-time 10 -H 'Content-Type: application/json' --data "$1" "http://$ADDR/graphql")
	[[ $body =~ $2 ]] || die "no match for $2 in: ${body:0:300}"
	echo "${BASH_REMATCH[1]}"
}

# two_line_cart creates a guest cart holding two products and prints its token.
two_line_cart() {
	local token ids
	token=$(graphql '{"query":"mutation { createCart { token } }"}' '"token":"([^"]+)"')
	ids=$(curl -sSf --max-time 10 -H 'Content-Type: application/json' \
		--data '{"query":"{ products(first: 2) { edges { node { id } } } }"}' "http://$ADDR/graphql" |
		grep -o '"id":"[^"]*"' | cut -d'"' -f4)
	for id in $ids; do
		graphql "{\"query\":\"mutation(\$c: ID!, \$p: ID!) { addCartLines(cartId: \$c, lines: [{productId: \$p, quantity: 1}]) { totalQuantity } }\",\"variables\":{\"c\":\"$token\",\"p\":\"$id\"}}" '"totalQuantity":([0-9]+)' >/dev/null
	done
	echo "$token"
}

# go_benchmarks runs the Go benchmarks that need the services: the stale-read window with
# three instances, checkout and add-to-cart (2,000 carts of 1 to 5 lines, concurrency 32),
# the latency of inventory alerts from commit to a websocket subscriber and to the
# dashboard's list in Chromium, the cache's hit path, and what checking a bearer token and a
# customer's session adds to a { __typename } request.
go_benchmarks() {
	note "running: Go benchmarks"
	TEST_DATABASE_URL=$(scripts/pg.sh url "$PG_PORT" postgres) TEST_REDIS_URL=$BENCH_REDIS_URL \
		CHROMIUM_BIN=$(scripts/chromium.sh bin) \
		go test -run '^$' -bench 'InvalidationWindow|Checkout|AlertLatency|DashboardAlert' -benchtime 200x -timeout 20m . |
		grep '^Benchmark' | tee "$OUT_DIR/go.txt"
	TEST_REDIS_URL=$BENCH_REDIS_URL go test -run '^$' -bench 'ReadThroughHit' -benchmem ./cache/ |
		grep '^Benchmark' | tee -a "$OUT_DIR/go.txt"
	TEST_DATABASE_URL=$(scripts/pg.sh url "$PG_PORT" postgres) TEST_REDIS_URL=$BENCH_REDIS_URL \
		go test -run '^$' -bench 'BearerCheck' -count 5 ./resolvers/ | grep '^Benchmark' | tee -a "$OUT_DIR/go.txt"
}

# search_engine ENGINE SIZE [VAR=value...] measures the three searches of the issue on one
# engine over a catalog of SIZE products, after the { __typename } ceiling of the same run;
# over the largest catalog also the faceted browse (browse_levels).
search_engine() {
	local engine=$1 size=$2 category
	shift 2
	start_server "$@"
	wait_for_backend "$engine"
	category=$(category_id furniture)
	scenario "$engine @ $size" typename "$Q_TYPENAME"
	scenario "$engine @ $size" "(a) two words, all facets" "$Q_SEARCH" '{"q":"oak table"}'
	scenario "$engine @ $size" "(b) misspelled" "$Q_SEARCH" '{"q":"oak tabel"}'
	scenario "$engine @ $size" "(c) category + 2 facets" "$Q_SEARCH" \
		"{\"f\":{\"categoryIds\":[\"$category\"],\"attributes\":[{\"key\":\"material\",\"values\":[\"oak\"]},{\"key\":\"color\",\"values\":[\"walnut\"]}]}}"
	if [ "$size" = "${SEARCH_SIZES##* }" ]; then
		browse_levels "$engine @ $size" "(d) browse, all facets"
		stop_server
		# Uncached: every browse asks the engine, beside the engine alone through the same
		# client (the Go benchmarks of search/ call the engine as the server does).
		start_server "$@" SEARCH_CACHE_TTL=0
		wait_for_backend "$engine"
		scenario "$engine @ $size" typename "$Q_TYPENAME"
		browse_levels "$engine @ $size" "(d) browse, uncached"
		engine_alone "$engine @ $size" "$@"
	fi
	stop_server
}

# browse_levels MODE LABEL runs the faceted browse of the whole catalog (no words, no
# filter, every facet) at concurrency 1, 4 and 16.
browse_levels() {
	local c
	for c in 1 4 16; do
		CONCURRENCY=$c scenario "$1" "$2, c=$c" "$Q_SEARCH"
	done
}

# engine_alone MODE [VAR=value...] runs the browse of browse_levels through the engine
# alone (BenchmarkPostgresSearch or BenchmarkElasticSearch) at concurrency 1, 4 and 16 and
# adds their rows; VAR=value are the server's settings (its database and index).
engine_alone() {
	local mode=$1 bench=PostgresSearch/d-browse c out
	shift
	local -A env
	local kv
	for kv in "$@"; do env[${kv%%=*}]=${kv#*=}; done
	if [ -n "${env[ELASTICSEARCH_URL]:-}" ]; then bench=ElasticSearch/browse-all; fi
	for c in 1 4 16; do
		note "running: $mode / engine alone, c=$c (load average $(load_average))"
		out=$(SEARCH_BENCH_CLIENTS=$c BENCH_SEARCH_URL=${env[DATABASE_URL]} SEARCH_BENCH_DATABASE_URL=${env[DATABASE_URL]} \
			TEST_ELASTICSEARCH_URL=${env[ELASTICSEARCH_URL]:-} SEARCH_BENCH_INDEX=${env[SEARCH_INDEX]:-} \
			go test -run '^$' -bench "$bench" -benchtime "$DURATION" -timeout 10m ./search/... | grep '^Benchmark') || failed=1
		rows+=("$(awk -v mode="$mode" -v c="$c" '{
			for (i = 3; i < NF; i++) v[$(i + 1)] = $i
			printf "| %s | (d) browse, engine alone, c=%s | %.0f | - | %.2f | %.2f | %.2f | | | | | | | | |", mode, c, v["queries/s"], v["p50-ms"], v["p95-ms"], v["p99-ms"]
		}' <<<"$out")")
	done
}

# wait_for_backend ENGINE waits until searches are answered by ENGINE: with Elasticsearch,
# the server first builds the index from PostgreSQL.
wait_for_backend() {
	wait_until 600 1 answered_by "$1" ||
		server_failed "searches were not answered by $1 within 600 s: $(search_answer | head -c 300)"
}

# search_answer prints the server's answer to a search that asks which engine answered.
search_answer() {
	curl -sf --max-time 10 -H 'Content-Type: application/json' \
		--data '{"query":"{ search(query: \"lamp\", first: 1) { backend } }"}' "http://$ADDR/graphql"
}

# answered_by ENGINE succeeds when ENGINE answers searches.
answered_by() { [[ $(search_answer) == *"\"backend\":\"$1\""* ]]; }

# category_id SLUG prints the global id of a top-level category.
category_id() {
	graphql '{"query":"{ categories { id slug } }"}' "\"id\":\"([^\"]+)\",\"slug\":\"$1\""
}

# search_bench runs both engines at each catalog size, each size in a database of its own
# (seeded once and kept), then a full reindex of the largest one.
search_bench() {
	local size url
	catalog_rows=("${rows[@]}")
	rows=()
	in_search=1
	scripts/search.sh start "$SEARCH_DIR" "$SEARCH_PORT"
	for size in $SEARCH_SIZES; do
		scripts/pg.sh createdb "$PG_PORT" "search_$size"
		url=$(scripts/pg.sh url "$PG_PORT" "search_$size")
		DATABASE_URL=$url bin/storefront seed --products "$size" --seed 7 --if-empty
		search_engine postgres "$size" DATABASE_URL="$url"
		search_engine elasticsearch "$size" DATABASE_URL="$url" ELASTICSEARCH_URL="$(scripts/search.sh url "$SEARCH_PORT")" SEARCH_INDEX="bench_$size"
	done
	note "running: full reindex of search_$size"
	DATABASE_URL=$url ELASTICSEARCH_URL="$(scripts/search.sh url "$SEARCH_PORT")" SEARCH_INDEX="bench_$size" LOG_LEVEL=warn \
		bin/storefront reindex | tee "$OUT_DIR/reindex.txt"
	note "running: sync lag"
	TEST_ELASTICSEARCH_URL="$(scripts/search.sh url "$SEARCH_PORT")" TEST_DATABASE_URL=$(scripts/pg.sh url "$PG_PORT" postgres) \
		SEARCH_BENCH_DATABASE_URL=$url SEARCH_BENCH_PRODUCTS=$size \
		go test -run '^$' -bench 'ElasticSyncLag' -benchtime 300x -timeout 20m ./search/... | grep '^Benchmark' | tee "$OUT_DIR/synclag.txt"
	note "running: single changes behind a repricing of 10,000 products (the feed's lanes)"
	TEST_ELASTICSEARCH_URL="$(scripts/search.sh url "$SEARCH_PORT")" TEST_DATABASE_URL=$(scripts/pg.sh url "$PG_PORT" postgres) \
		SEARCH_BENCH_DATABASE_URL=$url SEARCH_BENCH_PRODUCTS=$size \
		go test -run '^$' -bench 'ElasticRepricingLag' -benchtime 3x -timeout 20m ./search/... | grep '^Benchmark' | tee -a "$OUT_DIR/synclag.txt"
	search_rows=("${rows[@]}")
	rows=("${catalog_rows[@]}")
	in_search=""
}

# aliases N FIELD prints an operation of N aliased copies of FIELD, each with its own prefix
# or query word (s0 ... sN-1), so that no copy is answered from another's work.
aliases() {
	local n=$1 field=$2 i words=(oak walnut linen tabel chiar sofa lamp desk rug bed shelf stool)
	printf '{'
	for ((i = 0; i < n; i++)); do
		printf ' s%d: %s' "$i" "${field//WORD/${words[i % ${#words[@]}]}}"
	done
	printf ' }\n'
}

# most_aliases FIELD prints the largest number of aliased copies of FIELD that one operation
# may cost (1 to 30), asking the server.
most_aliases() {
	local n doc body
	for ((n = 30; n > 1; n--)); do
		doc=$(aliases "$n" "$1") # quotes are the only characters to escape in JSON
		body=$(curl -sS --max-time 30 -H 'Content-Type: application/json' -H 'X-Forwarded-For: 192.0.2.1' \
			--data "{\"query\":\"${doc//\"/\\\"}\"}" "http://$ADDR/graphql")
		[[ $body == *COMPLEXITY_LIMIT_EXCEEDED* ]] || break
	done
	echo "$n"
}

# abuse_files writes the documents of the abusive clients and of the memory probes.
abuse_files() {
	local ids page n i
	n=$(most_aliases 'suggest(prefix: "WORD", first: 100) { text product { id name } }')
	aliases "$n" 'suggest(prefix: "WORD", first: 100) { text product { id name } }' >"$OUT_DIR/abuse-suggest.graphql"
	abuse_notes+=("suggests: $n aliased copies per operation")
	n=$(most_aliases "search(query: \"WORD\", first: 20) { $SEARCH_FIELDS }")
	aliases "$n" "search(query: \"WORD\", first: 20) { $SEARCH_FIELDS }" >"$OUT_DIR/abuse-search.graphql"
	abuse_notes+=("searches: $n aliased copies per operation")
	aliases 2500 'suggest(prefix: "aa", first: 100) { text }' >"$OUT_DIR/probe-suggest.graphql"
	echo 'query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Product { name } } }' >"$OUT_DIR/probe-nodes.graphql"
	# 12,000 ids: the first 100 products, 120 times.
	page=$(curl -sSf --max-time 10 -H 'Content-Type: application/json' \
		--data '{"query":"{ products(first: 100) { edges { node { id } } } }"}' "http://$ADDR/graphql" |
		grep -o '"gid://[^"]*"' | paste -sd,)
	ids=$page
	for ((i = 1; i < 120; i++)); do ids+=",$page"; done
	echo "{\"ids\":[$ids]}" >"$OUT_DIR/probe-nodes-variables.json"
	head -c 1000000 /dev/zero | tr '\0' 'x' >"$OUT_DIR/probe-garbage.graphql"
}

# background NAME CLIENT DURATION LOADGEN_ARGS... starts a load generator as client CLIENT
# (X-Forwarded-For) for DURATION, its JSON summary going to $OUT_DIR/NAME.json.
background() {
	local name=$1 client=$2 duration=$3
	shift 3
	bin/loadgen -url "http://$ADDR/graphql" -name "$name" -header "X-Forwarded-For: $client" \
		-c 4 -d "$duration" -warmup 0s -json "$@" >"$OUT_DIR/$name.json" &
	client_pids+=($!)
}

# shopper LABEL measures the ordinary shopper and adds a row; the background clients must
# outlive it.
shopper() {
	local out values=() key
	note "running: abuse / shopper, $1"
	out=$(bin/loadgen -url "http://$ADDR/graphql" -name shopper -header "X-Forwarded-For: 198.51.100.1" \
		-query "$Q_PAGE" -c 1 -pace 250ms -d "$ABUSE_DURATION" -warmup 3s -json) || failed=1
	for key in rps p50_ms p95_ms p99_ms max_ms errors; do
		values+=("$(field "$out" "$key")")
	done
	[ -n "${idle_p95:-}" ] || idle_p95=${values[2]}
	abuse_rows+=("$(printf '| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %.1fx |' "$1" "${values[@]}" \
		"$(awk -v a="${values[2]}" -v b="$idle_p95" 'BEGIN { print (b > 0 ? a / b : 0) }')")")
}

# abusers_summary NAME... notes what each background client got.
abusers_summary() {
	local name out
	for name in "$@"; do
		out=$(cat "$OUT_DIR/$name.json")
		abuse_notes+=("$name: $(field "$out" requests) answered ($(field "$out" errors) failed), $(field "$out" limited) refused with RATE_LIMITED, p50 $(field "$out" p50_ms) ms")
	done
}

# abuse_bench measures what abusive clients within their rate limits do to an ordinary
# shopper, and the server's peak memory while memory probes run (see the top of the file).
abuse_bench() {
	local seconds
	catalog_rows=("${rows[@]}")
	rows=()
	idle_p95=""
	start_server REDIS_URL="$BENCH_REDIS_URL" TRUSTED_PROXIES=127.0.0.1 RATE_LIMIT_PER_SECOND=5000 RATE_LIMIT_BURST=25000
	bin/loadgen -url "http://$ADDR/graphql" -query "$Q_TYPENAME" -c "$CONCURRENCY" -d 5s -warmup 1s \
		-follow-retry-after -name typename >"$OUT_DIR/abuse-typename.txt" || failed=1
	abuse_notes+=("{ __typename } ceiling, one client following Retry-After: $(cat "$OUT_DIR/abuse-typename.txt")")
	abuse_files
	shopper "alone"
	seconds=$((${ABUSE_DURATION%s} + 6))s
	background abuse-suggests 203.0.113.1 "$seconds" -query-file "$OUT_DIR/abuse-suggest.graphql" -follow-retry-after
	background abuse-searches 203.0.113.2 "$seconds" -query-file "$OUT_DIR/abuse-search.graphql" -follow-retry-after
	sleep 1
	shopper "beside two abusive clients"
	wait "${client_pids[@]}"
	client_pids=()
	abusers_summary abuse-suggests abuse-searches
	background abuse-suggests 203.0.113.1 "$seconds" -query-file "$OUT_DIR/abuse-suggest.graphql" -follow-retry-after
	background abuse-searches 203.0.113.2 "$seconds" -query-file "$OUT_DIR/abuse-search.graphql" -follow-retry-after
	background probe-suggests 203.0.113.3 "$seconds" -query-file "$OUT_DIR/probe-suggest.graphql" -follow-retry-after -expect-errors
	background probe-nodes 203.0.113.4 "$seconds" -query-file "$OUT_DIR/probe-nodes.graphql" \
		-variables-file "$OUT_DIR/probe-nodes-variables.json" -follow-retry-after -expect-errors
	background probe-garbage 203.0.113.5 "$seconds" -query-file "$OUT_DIR/probe-garbage.graphql" -follow-retry-after -expect-errors
	sleep 1
	shopper "beside both and three memory probes"
	wait "${client_pids[@]}"
	client_pids=()
	abusers_summary probe-suggests probe-nodes probe-garbage
	abuse_notes+=("server peak RSS (VmHWM) over the whole part: $(peak_rss)")
	stop_server
	rows=("${catalog_rows[@]}")
}

report() {
	local commit cpu
	commit=$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	{
		echo "# Catalog API benchmark"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
		echo "- commit: $commit"
		echo "- CPUs: $(nproc)${cpu:+ ($cpu)}, shared by loadgen, server and PostgreSQL"
		echo "- load: $CONCURRENCY concurrent clients, $DURATION measured after $WARMUP warm-up, per scenario"
		echo "- data: $PRODUCTS products; product by id asks for one hot product every time"
		echo "- server peak RSS (VmHWM): ${rss_notes[*]}"
		echo "- load average at the start: $start_load; at the end: $(load_average)"
		echo "- profiles of every scenario: $PROFILES (go tool pprof bin/storefront FILE)"
		echo
		echo "| mode | scenario | req/s | of ceiling | p50 ms | p95 ms | p99 ms | max ms | errors | cache hit ratio | backend trips/request | CPU ms/request: server | PostgreSQL | Redis | where the server's CPU went |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
		printf '%s\n' "${rows[@]}"
		echo
		echo '```'
		cat "$OUT_DIR/go.txt"
		echo '```'
		echo
		echo "## Search"
		echo
		echo "Each engine over the same database, $CONCURRENCY concurrent clients, after the { __typename } ceiling of the same server."
		echo
		echo "| engine @ products | scenario | req/s | of ceiling | p50 ms | p95 ms | p99 ms | max ms | errors | cache hit ratio | backend trips/request | CPU ms/request: server | PostgreSQL | Redis | where the server's CPU went |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
		printf '%s\n' "${search_rows[@]}"
		echo
		echo '```'
		cat "$OUT_DIR/reindex.txt" "$OUT_DIR/synclag.txt"
		echo '```'
		echo
		echo "## Mixed workload"
		echo
		cat "$OUT_DIR/mix.md"
		echo
		echo "## Abuse"
		echo
		echo "The shopper: one client, a page of 20 products every 250 ms, for $ABUSE_DURATION after 3 s of warm-up; rate limits on."
		echo
		echo "| shopper | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | p95 / alone |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		printf '%s\n' "${abuse_rows[@]}"
		echo
		printf -- '- %s\n' "${abuse_notes[@]}"
	} | tee "$REPORT"
	reported=1
}

# mix_bench runs the storefront's mixed workload on each catalog size of MIX_SIZES (the
# 3,000 products of make run's seed, then the search benchmark's databases), with the
# PostgreSQL engine and then Elasticsearch, profiling the server over the whole run.
mix_bench() {
	local size url db seed engine out=$OUT_DIR/mix.md
	: >"$out"
	scripts/search.sh start "$SEARCH_DIR" "$SEARCH_PORT"
	for size in $MIX_SIZES; do
		db=search_$size seed=7
		if [ "$size" = 3000 ]; then db=mix_3000 seed=1; fi
		scripts/pg.sh createdb "$PG_PORT" "$db"
		url=$(scripts/pg.sh url "$PG_PORT" "$db")
		DATABASE_URL=$url bin/storefront seed --products "$size" --seed "$seed" --if-empty
		for engine in postgres elasticsearch; do
			if [ "$engine" = postgres ]; then
				start_server DATABASE_URL="$url" REDIS_URL="$BENCH_REDIS_URL"
			else
				start_server DATABASE_URL="$url" REDIS_URL="$BENCH_REDIS_URL" \
					ELASTICSEARCH_URL="$(scripts/search.sh url "$SEARCH_PORT")" SEARCH_INDEX="bench_$size"
			fi
			wait_for_backend "$engine"
			note "running: mixed workload, $engine @ $size (load average $(load_average))"
			# Into tee by process substitution, not a pipe: piped, the group would run in a
			# subshell and its failed=1 be lost.
			{
				echo "### $engine @ $size products (load average $(load_average) at the start)"
				echo
				echo "Ceiling of the same server: $(bin/loadgen -url "http://$ADDR/graphql" -query "$Q_TYPENAME" -c "$CONCURRENCY" -d 5s -warmup 1s -name '{ __typename }') (load average $(load_average))."
				echo
				(sleep 5 && curl -sf --max-time 120 -o "$PROFILES/mix-$engine-$size.cpu.pprof" "http://$DEBUG/debug/pprof/profile?seconds=60") &
				profilers+=($!)
				bin/loadgen -mix -url "http://$ADDR/graphql" -rates "$MIX_RATES" -d "$DURATION" -warmup "$WARMUP" || failed=1
				wait_profiles
				echo
				echo "Server peak RSS $(peak_rss); load average at the end $(load_average); CPU profile of the first minute: $PROFILES/mix-$engine-$size.cpu.pprof ($(where_time_goes "$PROFILES/mix-$engine-$size"))."
				echo
			} > >(tee -a "$out")
			stop_server
		done
	done
}

main() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	build
	start_load=$(load_average)
	mkdir -p "$PROFILES"
	start_database
	start_redis
	: >"$OUT_DIR/go.txt"
	: >"$OUT_DIR/reindex.txt"
	: >"$OUT_DIR/synclag.txt"
	: >"$OUT_DIR/mix.md"
	if [[ " $PARTS " == *" catalog "* ]]; then
		mode redis+L1 issue REDIS_URL="$BENCH_REDIS_URL"
		mode postgres pages CACHE=false
		mode redis pages REDIS_URL="$BENCH_REDIS_URL" CACHE_L1_SIZE=0
		go_benchmarks
	fi
	if [[ " $PARTS " == *" search "* ]]; then
		search_bench
	fi
	if [[ " $PARTS " == *" mix "* ]]; then
		mix_bench
	fi
	if [[ " $PARTS " == *" abuse "* ]]; then
		abuse_bench
	fi
	report
	[ -z "$failed" ] || die "some requests failed: see the errors column and loadgen's messages above"
}

main "$@"
