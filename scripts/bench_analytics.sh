#!/usr/bin/env bash
# bench_analytics.sh benchmarks the sales analytics (`make bench`, after the catalog): for
# each size in BENCH_FACTS (default "1000000 10000000" order lines) and each analytics mode in
# BENCH_ANALYTICS_MODES (default "timescaledb postgres") it fills a database of the private
# bench cluster (which preloads TimescaleDB, see scripts/pg.sh) with the same year of
# synthetic sales facts (`storefront seed --orders N --facts-only`, deterministic, kept
# between runs), then tools/analyticsbench times the dashboard queries through the rollups and
# as a plain GROUP BY over the raw facts, side by side, the refresh of an hour of late facts,
# fact ingest while refreshes run, and (TimescaleDB) the compression of the raw facts. The
# report goes to .run/bench/analytics.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly PG_DIR=.run/bench-pg PG_PORT=$((5435 + ${TEST_PORT_OFFSET:-0}))
readonly OUT_DIR=.run/bench REPORT=.run/bench/analytics.md
readonly SIZES=${BENCH_FACTS:-1000000 10000000}
readonly RUNS=${BENCH_ANALYTICS_RUNS:-30}
# The raw GROUP BY of a year takes seconds at 10M facts: fewer runs of it, among those above.
readonly RAW_RUNS=${BENCH_ANALYTICS_RAW_RUNS:-10}
readonly MODES=${BENCH_ANALYTICS_MODES:-timescaledb postgres}
# A generated order holds 1.84 lines on average: orders = lines / 1.84.
readonly LINES_PER_ORDER_X100=184

cleanup() { scripts/pg.sh stop "$PG_DIR" || echo "bench_analytics: could not stop $PG_DIR" >&2; }

main() {
	trap cleanup EXIT
	mkdir -p bin "$OUT_DIR"
	go build -o bin/storefront .
	go build -o bin/analyticsbench ./tools/analyticsbench
	scripts/pg.sh start "$PG_DIR" "$PG_PORT" fast
	{
		echo "# Sales analytics benchmark"
		echo
		echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); commit: $(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
		echo "- CPUs: $(nproc), shared by the benchmark and PostgreSQL; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "- $RUNS runs of each query through the rollups, $RAW_RUNS of its raw GROUP BY among them"
		echo "- store-level timings (store.SalesReport, as the API calls it), without HTTP and GraphQL"
		echo
	} >"$REPORT"
	local lines db mode
	for lines in $SIZES; do
		for mode in $MODES; do
			db="analytics_${lines}_$mode"
			scripts/pg.sh createdb "$PG_PORT" "$db"
			ANALYTICS=$mode DATABASE_URL=$(scripts/pg.sh url "$PG_PORT" "$db") bin/storefront seed --products 3000 --seed 11 \
				--orders $((lines * 100 / LINES_PER_ORDER_X100)) --facts-only --if-empty
			bin/analyticsbench -db "$(scripts/pg.sh url "$PG_PORT" "$db")" -runs "$RUNS" -raw-runs "$RAW_RUNS" | tee -a "$REPORT"
			echo >>"$REPORT"
		done
	done
	echo "bench_analytics: report in $REPORT" >&2
}

main "$@"
