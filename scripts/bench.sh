#!/usr/bin/env bash
# bench.sh benchmarks the catalog API (`make bench`): it seeds a private PostgreSQL cluster,
# starts the server on loopback in each cache mode in turn, drives it with tools/loadgen and
# prints a markdown table, also written to .run/bench/catalog.md. Modes:
#   postgres         CACHE=false: every load goes to PostgreSQL (the uncached path)
#   redis            Redis read-through cache, no in-process tier (CACHE_L1_SIZE=0)
#   redis+L1         Redis with the in-process tier: the default configuration
# Scenarios in each mode, in this order:
#   typename         { __typename }: the GraphQL ceiling of this machine, no database work
#   product by id    one product with price, category, brand and availability; every request
#                    asks for the same product (the first of the default sort), so this
#                    measures one hot product, not a mix of random ids
#   products page    the first page of 20 products with the same fields
# For each scenario the cache's hit ratio and backend round trips per request come from the
# server's /metrics, read before and after. Rate limits are off: one load generator stands
# for many clients. Then Go benchmarks: the stale-read window after a change with three
# server instances on one Redis, checkout and add-to-cart throughput, and the read-through
# cache's hit path.
# Then search (search_bench): at each size of BENCH_SEARCH_PRODUCTS ("10000 100000"), the
# PostgreSQL engine and then Elasticsearch (the OpenSearch node of scripts/search.sh on port
# 9251, the index built by the server from PostgreSQL at start) answer (a) a two-word query,
# (b) a misspelled one and (c) a category browse with two attribute facets selected, each
# with every facet; then a full reindex of the largest catalog, the sync lag, and the lag of
# single changes committed behind a repricing of 10,000 products (Go benchmarks of search/).
# Load generator, server and PostgreSQL share this machine's CPUs: compare runs made on the
# same machine only.
#
# Environment: BENCH_PARTS ("catalog search") what to run; BENCH_PRODUCTS (10000) products to seed into an empty database,
# BENCH_CONCURRENCY (16) concurrent clients, BENCH_DURATION (15s) measured time per scenario.
# The cluster in .run/bench-pg is kept between runs (stopped, not deleted), so the seed only
# happens once; `scripts/pg.sh destroy .run/bench-pg` starts afresh, say after changing
# BENCH_PRODUCTS. A fast Redis (nothing on disk, so every run starts cold) runs in
# .run/bench-redis on 127.0.0.1:6382 for the length of the run; its URL is BENCH_REDIS_URL.
set -euo pipefail
shopt -s inherit_errexit
# The table's numbers use a decimal dot whatever the caller's locale.
export LC_ALL=C

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# TEST_PORT_OFFSET (default 0) moves every port, as in scripts/test.sh.
readonly OFFSET=${TEST_PORT_OFFSET:-0}
readonly PG_DIR=.run/bench-pg PG_PORT=$((5435 + OFFSET))
readonly REDIS_DIR=.run/bench-redis REDIS_PORT=$((6382 + OFFSET))
readonly ADDR=127.0.0.1:$((8081 + OFFSET))
readonly OUT_DIR=.run/bench
readonly REPORT=$OUT_DIR/catalog.md SERVER_LOG=$OUT_DIR/server.log
readonly PRODUCTS=${BENCH_PRODUCTS:-10000}
readonly CONCURRENCY=${BENCH_CONCURRENCY:-16}
readonly DURATION=${BENCH_DURATION:-15s}
readonly WARMUP=3s

readonly FIELDS='id sku name price { amount currency } category { id name } brand { id name } availability { inStock available }'
readonly Q_TYPENAME='{ __typename }'
readonly Q_PRODUCT="query(\$id: ID!) { product(id: \$id) { $FIELDS } }"
readonly Q_PAGE="{ products(first: 20) { edges { node { $FIELDS } } } }"

# Search: the page of 20 with every facet and the price range, as a search page shows them.
readonly SEARCH_FIELDS='totalCount backend edges { node { id name price { amount } } highlights { field fragments } } facets { key label values { value label count selected } } priceRange { min max }'
readonly Q_SEARCH="query(\$q: String, \$f: SearchFilter) { search(query: \$q, filter: \$f, first: 20) { $SEARCH_FIELDS } }"
readonly SEARCH_SIZES=${BENCH_SEARCH_PRODUCTS:-10000 100000}
# BENCH_PARTS picks what runs: "catalog search" (the default), or either alone.
readonly PARTS=${BENCH_PARTS:-catalog search}
readonly SEARCH_DIR=.run/bench-search SEARCH_PORT=$((9251 + OFFSET))

server_pid=""
failed=""
rows=()
catalog_rows=()
search_rows=()
rss_notes=()

die() {
	echo "bench: $*" >&2
	exit 1
}
note() { echo "bench: $*" >&2; }

# cleanup runs on every exit, failure included: the server, Redis and the cluster must not
# outlive the benchmark.
cleanup() {
	stop_server
	scripts/search.sh stop "$SEARCH_DIR" || note "could not stop the search node in $SEARCH_DIR"
	scripts/redis.sh stop "$REDIS_DIR" || note "could not stop Redis in $REDIS_DIR"
	scripts/pg.sh stop "$PG_DIR" || note "could not stop the cluster in $PG_DIR"
}

stop_server() {
	[ -n "$server_pid" ] || return 0
	kill -TERM "$server_pid" 2>/dev/null || true
	# Graceful shutdown gets 15 s; a server stuck past that is killed, so that the cluster
	# can still stop.
	local deadline=$((SECONDS + 15))
	while kill -0 "$server_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
	kill -KILL "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=""
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
	if (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR#*:}") 2>/dev/null; then
		die "$ADDR is already in use; stop whatever listens there"
	fi
	env "$@" HTTP_ADDR=$ADDR LOG_LEVEL=warn RATE_LIMIT_PER_SECOND=0 bin/storefront serve >"$SERVER_LOG" 2>&1 &
	server_pid=$!
	local deadline=$((SECONDS + 30))
	until curl -sf -o /dev/null --max-time 2 "http://$ADDR/readyz"; do
		kill -0 "$server_pid" 2>/dev/null || server_failed "the server exited while starting"
		((SECONDS < deadline)) || server_failed "the server was not ready within 30 s"
		sleep 0.2
	done
}

server_failed() {
	tail -n 30 "$SERVER_LOG" >&2 || true
	die "$1 (log: $SERVER_LOG)"
}

# first_product_id prints the id of the first product of the default sort.
first_product_id() {
	local body re='"id":"([^"]+)"'
	body=$(curl -sSf --max-time 10 -H 'Content-Type: application/json' \
		--data '{"query":"{ products(first: 1) { edges { node { id } } } }"}' "http://$ADDR/graphql")
	[[ $body =~ $re ]] || die "no product id in the products response: ${body:0:300}"
	echo "${BASH_REMATCH[1]}"
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

# scenario MODE LABEL QUERY [VARIABLES] runs loadgen and adds a table row. A failing
# scenario still gets its row (with its error count) and fails the benchmark at the end.
scenario() {
	local mode=$1 label=$2 query=$3 variables=${4:-} out key values=() before after
	local args=(-url "http://$ADDR/graphql" -name "$label" -query "$query"
		-c "$CONCURRENCY" -d "$DURATION" -warmup "$WARMUP" -json)
	if [ -n "$variables" ]; then args+=(-variables "$variables"); fi
	note "running: $mode / $label"
	before=$(counters)
	out=$(bin/loadgen "${args[@]}") || failed=1
	after=$(counters)
	if [ -z "$out" ]; then
		rows+=("| $mode | $label | n/a | n/a | n/a | n/a | n/a | loadgen failed | | |")
		return
	fi
	for key in rps p50_ms p95_ms p99_ms max_ms errors; do
		values+=("$(field "$out" "$key")")
	done
	rows+=("$(printf '| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %d | %s |' "$mode" "$label" "${values[@]}" \
		"$(cache_figures "$before" "$after")")")
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

# mode NAME [VAR=value...] runs every scenario against a server started with that
# environment, then notes its peak RSS.
mode() {
	local name=$1 id rss
	shift
	start_server "$@"
	id=$(first_product_id)
	scenario "$name" typename "$Q_TYPENAME"
	scenario "$name" "product by id" "$Q_PRODUCT" "{\"id\":\"$id\"}"
	scenario "$name" "products page of 20" "$Q_PAGE"
	rss=$(peak_rss) || { rss="unknown: the server had exited" && failed=1; }
	rss_notes+=("$name: $rss")
	stop_server
}

# go_benchmarks runs the Go benchmarks that need the services: the stale-read window with
# three instances, checkout and add-to-cart (2,000 carts of 1 to 5 lines, concurrency 32),
# the latency of inventory alerts from commit to a websocket subscriber and to the
# dashboard's list in Chromium, and the cache's hit path.
go_benchmarks() {
	note "running: Go benchmarks"
	TEST_DATABASE_URL=$(scripts/pg.sh url "$PG_PORT" postgres) TEST_REDIS_URL=$BENCH_REDIS_URL \
		CHROMIUM_BIN=$(scripts/chromium.sh bin) \
		go test -run '^$' -bench 'InvalidationWindow|Checkout|AlertLatency|DashboardAlert' -benchtime 200x -timeout 20m . |
		grep '^Benchmark' | tee "$OUT_DIR/go.txt"
	TEST_REDIS_URL=$BENCH_REDIS_URL go test -run '^$' -bench 'ReadThroughHit' -benchmem ./cache/ |
		grep '^Benchmark' | tee -a "$OUT_DIR/go.txt"
}

# search_engine ENGINE SIZE [VAR=value...] measures the three searches of the issue on one
# engine over a catalog of SIZE products, after the { __typename } ceiling of the same run.
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
	stop_server
}

# wait_for_backend ENGINE waits until searches are answered by ENGINE: with Elasticsearch,
# the server first builds the index from PostgreSQL.
wait_for_backend() {
	local deadline=$((SECONDS + 600)) body
	until body=$(curl -sf --max-time 10 -H 'Content-Type: application/json' \
		--data '{"query":"{ search(query: \"lamp\", first: 1) { backend } }"}' "http://$ADDR/graphql") &&
		[[ $body == *"\"backend\":\"$1\""* ]]; do
		((SECONDS < deadline)) || server_failed "searches were not answered by $1 within 600 s: ${body:0:300}"
		sleep 1
	done
}

# category_id SLUG prints the global id of a top-level category.
category_id() {
	local body re="\"id\":\"([^\"]+)\",\"slug\":\"$1\""
	body=$(curl -sSf --max-time 10 -H 'Content-Type: application/json' \
		--data '{"query":"{ categories { id slug } }"}' "http://$ADDR/graphql")
	[[ $body =~ $re ]] || die "no category $1 in: ${body:0:300}"
	echo "${BASH_REMATCH[1]}"
}

# search_bench runs both engines at each catalog size, each size in a database of its own
# (seeded once and kept), then a full reindex of the largest one.
search_bench() {
	local size url
	catalog_rows=("${rows[@]}")
	rows=()
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
		go test -run '^$' -bench 'ElasticSyncLag' -benchtime 300x -timeout 20m ./search/ | grep '^Benchmark' | tee "$OUT_DIR/synclag.txt"
	note "running: single changes behind a repricing of 10,000 products (the feed's lanes)"
	TEST_ELASTICSEARCH_URL="$(scripts/search.sh url "$SEARCH_PORT")" TEST_DATABASE_URL=$(scripts/pg.sh url "$PG_PORT" postgres) \
		SEARCH_BENCH_DATABASE_URL=$url SEARCH_BENCH_PRODUCTS=$size \
		go test -run '^$' -bench 'ElasticRepricingLag' -benchtime 3x -timeout 20m ./search/ | grep '^Benchmark' | tee -a "$OUT_DIR/synclag.txt"
	search_rows=("${rows[@]}")
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
		echo
		echo "| mode | scenario | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | cache hit ratio | backend trips/request |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
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
		echo "| engine @ products | scenario | req/s | p50 ms | p95 ms | p99 ms | max ms | errors | cache hit ratio | backend trips/request |"
		echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
		printf '%s\n' "${search_rows[@]}"
		echo
		echo '```'
		cat "$OUT_DIR/reindex.txt" "$OUT_DIR/synclag.txt"
		echo '```'
	} | tee "$REPORT"
}

main() {
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	build
	start_database
	start_redis
	if [[ " $PARTS " == *" catalog "* ]]; then
		mode postgres CACHE=false
		mode redis REDIS_URL="$BENCH_REDIS_URL" CACHE_L1_SIZE=0
		mode redis+L1 REDIS_URL="$BENCH_REDIS_URL"
		go_benchmarks
	else
		: >"$OUT_DIR/go.txt"
	fi
	if [[ " $PARTS " == *" search "* ]]; then
		search_bench
	else
		: >"$OUT_DIR/reindex.txt"
		: >"$OUT_DIR/synclag.txt"
	fi
	report
	[ -z "$failed" ] || die "some requests failed: see the errors column and loadgen's messages above"
}

main "$@"
