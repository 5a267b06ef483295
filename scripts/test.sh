#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup and forward run from traps
# test.sh runs the Go tests against real services (`make test`): it starts, all in fast mode
# (throwaway data, no fsync) and listening on 127.0.0.1 only,
#   - the private PostgreSQL cluster .run/test-pg on port 5434 (scripts/pg.sh), which preloads
#     TimescaleDB (installed first when missing: scripts/timescaledb.sh), so that test databases
#     of both analytics modes, TimescaleDB and plain PostgreSQL, live side by side in it,
#   - the private Redis server .run/test-redis on port 6381 (scripts/redis.sh),
#   - the private Redis Cluster .run/test-redis-cluster, three masters on ports 7101-7103,
#   - the search node .run/test-search on port 9250 (scripts/search.sh: a real single-node
#     OpenSearch from tools/searchnode),
# installs the Node clients of the protocol tests (npm ci in testdata/clients),
# points the tests at them with TEST_DATABASE_URL, TEST_REDIS_URL, TEST_REDIS_CLUSTER_ADDRS
# (comma-separated host:port) and TEST_ELASTICSEARCH_URL, gives them REDIS_SERVER_BIN (the absolute path of redis-server,
# for tests that start throwaway servers of their own), CHROMIUM_BIN (Debian's Chromium for the
# browser tests, installed by scripts/chromium.sh when missing), sets STOREFRONT_REQUIRE_SERVICES=1 (a
# test that cannot reach a service fails instead of skipping), runs
# `go test -race -count=1 -timeout 20m`, and always stops the servers again, also when
# interrupted. It exits with go test's status.
#
# Usage: scripts/test.sh [go test flags and packages]   (default packages: ./...)
#        scripts/test.sh --fleet [go test flags and packages]
# --fleet (`make test-fleet`) runs the scale-out tests instead, the TestFleet* tests of files
# built with the `fleet` tag (default: `-run ^TestFleet -p 1 . ./db/...`; one package at a time,
# as they stop and pause shared servers), against the PostgreSQL cluster and, beside it,
#   - a streaming read replica of it, .run/test-pg-replica on port 5437 (scripts/pg.sh replica,
#     a fresh base backup each run, destroyed with its replication slot at the end),
#     named to the tests by TEST_REPLICA_URL, TEST_REPLICA_DIR and TEST_PRIMARY_PORT,
#   - a Redis master, its replica and three Sentinels, .run/test-redis-sentinel on ports
#     6390-6394 (scripts/redis.sh sentinel-start, afresh each run), named by TEST_SENTINEL_ADDRS
#     and TEST_SENTINEL_MASTER,
#   - a two-node OpenSearch cluster, .run/test-search-cluster on ports 9260-9261 (transport
#     9270-9271; scripts/search.sh cluster-start), named by TEST_SEARCH_CLUSTER_URLS, _DIR and _PORT,
#   - HAProxy's binary (scripts/haproxy.sh, which installs Debian's package when it is missing),
#     named by HAPROXY_BIN: the tests run their own load balancer in front of their instances,
#   - TLS material, .run/test-tls (scripts/tls.sh: a private authority and a certificate for
#     127.0.0.1), named by TEST_TLS_DIR, for the TLS Redis and proxy the tests start, and the
#     authority of the PostgreSQL cluster's certificate, named by TEST_PG_CA,
# and the Redis server.
# Servers left running by a killed run are reused, then stopped. Runs that overlap in one
# checkout share the servers: each holds a shared lock on .run/test.users while it runs, and
# only the last one to finish (the one that can take the lock exclusively) stops them.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# TEST_PORT_OFFSET (default 0) moves every port, so that checkouts side by side (git
# worktrees) can each run their tests at once.
readonly OFFSET=${TEST_PORT_OFFSET:-0}
readonly PG_DIR=.run/test-pg PG_PORT=$((5434 + OFFSET))
readonly REDIS_DIR=.run/test-redis REDIS_PORT=$((6381 + OFFSET))
readonly REDIS_CLUSTER_DIR=.run/test-redis-cluster REDIS_CLUSTER_BASEPORT=$((7101 + OFFSET * 10))
readonly SEARCH_DIR=.run/test-search SEARCH_PORT=$((9250 + OFFSET))
readonly REPLICA_DIR=.run/test-pg-replica REPLICA_PORT=$((5437 + OFFSET))
readonly SENTINEL_DIR=.run/test-redis-sentinel SENTINEL_BASEPORT=$((6390 + OFFSET))
readonly SEARCH_CLUSTER_DIR=.run/test-search-cluster SEARCH_CLUSTER_PORT=$((9260 + OFFSET))
readonly TLS_DIR=.run/test-tls
readonly USERS_LOCK=.run/test.users

cleanup() {
	local rc=$?
	# A second Ctrl-C or TERM must not cut the stopping short and leave servers running.
	trap - EXIT
	trap '' INT TERM
	if flock -x -n 8; then
		scripts/search.sh stop "$SEARCH_DIR" 8>&- || true
		scripts/search.sh cluster-stop "$SEARCH_CLUSTER_DIR" 8>&- || true
		scripts/redis.sh cluster-stop "$REDIS_CLUSTER_DIR" 8>&- || true
		scripts/redis.sh stop "$REDIS_DIR" 8>&- || true
		scripts/redis.sh sentinel-stop "$SENTINEL_DIR" 8>&- || true
		scripts/pg.sh destroy "$REPLICA_DIR" 8>&- || true
		scripts/pg.sh stop "$PG_DIR" 8>&- || true
	else
		echo "test.sh: another test run still uses the test servers: leaving them running for that run to stop" >&2
	fi
	exit "$rc"
}

mkdir -p "$(dirname "$USERS_LOCK")"
exec 8>>"$USERS_LOCK"
# Waits while a finishing run stops the servers, so that this run then starts them afresh.
flock -s 8
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fleet=""
if [ "${1:-}" = --fleet ]; then
	fleet=1
	shift
fi

# fd 8 is closed for children: the servers and go test must not hold the lock.
scripts/pg.sh start "$PG_DIR" "$PG_PORT" fast 8>&-
scripts/redis.sh start "$REDIS_DIR" "$REDIS_PORT" fast 8>&-
TEST_DATABASE_URL="$(scripts/pg.sh url "$PG_PORT" postgres)"
TEST_REDIS_URL="$(scripts/redis.sh url "$REDIS_PORT")"
REDIS_SERVER_BIN="$(scripts/redis.sh bin 8>&-)"
export TEST_DATABASE_URL TEST_REDIS_URL REDIS_SERVER_BIN
export STOREFRONT_REQUIRE_SERVICES=1

args=("$@")
if [ -n "$fleet" ]; then
	# A fresh base backup each run: a replica kept from an earlier run would first replay all
	# that other test runs wrote meanwhile.
	scripts/pg.sh destroy "$REPLICA_DIR" 8>&-
	scripts/pg.sh replica "$REPLICA_DIR" "$REPLICA_PORT" "$PG_PORT" fast 8>&-
	TEST_REPLICA_URL="$(scripts/pg.sh url "$REPLICA_PORT" postgres)"
	TEST_REPLICA_DIR="$REPLICA_DIR"
	TEST_PRIMARY_PORT="$PG_PORT"
	export TEST_REPLICA_URL TEST_REPLICA_DIR TEST_PRIMARY_PORT
	scripts/redis.sh sentinel-start "$SENTINEL_DIR" "$SENTINEL_BASEPORT" 8>&-
	TEST_SENTINEL_ADDRS="$(scripts/redis.sh sentinel-addrs "$SENTINEL_BASEPORT")"
	TEST_SENTINEL_MASTER=storefront
	HAPROXY_BIN="$(scripts/haproxy.sh bin 8>&-)"
	scripts/tls.sh make "$TLS_DIR" 8>&-
	TEST_TLS_DIR="$(pwd -P)/$TLS_DIR"
	TEST_PG_CA="$(scripts/pg.sh ca "$PG_DIR")"
	export TEST_TLS_DIR TEST_PG_CA
	scripts/search.sh cluster-start "$SEARCH_CLUSTER_DIR" "$SEARCH_CLUSTER_PORT" 8>&-
	TEST_SEARCH_CLUSTER_URLS="$(scripts/search.sh cluster-urls "$SEARCH_CLUSTER_PORT")"
	TEST_SEARCH_CLUSTER_DIR="$SEARCH_CLUSTER_DIR"
	TEST_SEARCH_CLUSTER_PORT="$SEARCH_CLUSTER_PORT"
	export TEST_SENTINEL_ADDRS TEST_SENTINEL_MASTER HAPROXY_BIN TEST_SEARCH_CLUSTER_URLS TEST_SEARCH_CLUSTER_DIR TEST_SEARCH_CLUSTER_PORT
	if [ ${#args[@]} -eq 0 ]; then args=(-run '^TestFleet' -p 1 . ./db/...); fi
	args=(-tags fleet "${args[@]}")
else
	scripts/redis.sh cluster-start "$REDIS_CLUSTER_DIR" "$REDIS_CLUSTER_BASEPORT" 8>&-
	scripts/search.sh start "$SEARCH_DIR" "$SEARCH_PORT" 8>&-
	# The third-party clients that protocols_e2e_test.go runs (the graphql-http audit, graphql-ws).
	npm ci --prefix testdata/clients --no-audit --no-fund --loglevel=error 8>&-
	TEST_REDIS_CLUSTER_ADDRS="$(scripts/redis.sh cluster-addrs "$REDIS_CLUSTER_BASEPORT")"
	CHROMIUM_BIN="$(scripts/chromium.sh bin 8>&-)"
	TEST_ELASTICSEARCH_URL="$(scripts/search.sh url "$SEARCH_PORT")"
	export TEST_REDIS_CLUSTER_ADDRS CHROMIUM_BIN TEST_ELASTICSEARCH_URL
	if [ ${#args[@]} -eq 0 ]; then args=(./...); fi
fi

# go test runs as a job in its own process group, so that a signal to this script (Ctrl-C,
# or CI's timeout sending TERM) reaches go test and the test binaries it started, and this
# script still gets to stop the servers once they have exited.
set -m
go test -race -count=1 -timeout 20m "${args[@]}" </dev/null 8>&- &
gotest=$!
set +m
forward() {
	kill -s "$1" -- "-$gotest" 2>/dev/null || true
}
trap 'forward INT' INT
trap 'forward TERM' TERM

# wait returns early (status > 128) when a trapped signal arrives: wait until go test has
# really ended, then take its status.
while :; do
	rc=0
	wait "$gotest" || rc=$?
	kill -0 "$gotest" 2>/dev/null || break
done
if [ "$rc" -gt 128 ]; then
	r=0
	wait "$gotest" 2>/dev/null || r=$?
	if [ "$r" -ne 127 ]; then rc=$r; fi
fi
exit "$rc"
