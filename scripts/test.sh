#!/usr/bin/env bash
# shellcheck disable=SC2317 # cleanup and forward run from traps
# test.sh runs the Go tests against real services (`make test`): it starts the private
# PostgreSQL cluster .run/test-pg on 127.0.0.1:5434 in fast mode, points the tests at it
# with TEST_DATABASE_URL and STOREFRONT_REQUIRE_SERVICES=1 (a test that cannot reach a
# service fails instead of skipping), runs `go test -race -count=1 -timeout 20m`, and always
# stops the cluster again, also when interrupted. It exits with go test's status.
#
# Usage: scripts/test.sh [go test flags and packages]   (default packages: ./...)
# A cluster left running by a killed run is reused, then stopped. Runs that overlap in one
# checkout share the cluster: each holds a shared lock on .run/test-pg.users while it runs,
# and only the last one to finish (the one that can take the lock exclusively) stops it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly PG_DIR=.run/test-pg PG_PORT=5434 USERS_LOCK=.run/test-pg.users

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if flock -x -n 8; then
		scripts/pg.sh stop "$PG_DIR" 8>&- || true
	else
		echo "test.sh: another test run still uses $PG_DIR: leaving it running for that run to stop" >&2
	fi
	exit "$rc"
}

mkdir -p "$(dirname "$USERS_LOCK")"
exec 8>>"$USERS_LOCK"
# Waits while a finishing run stops the cluster, so that this run then starts it afresh.
flock -s 8
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fd 8 is closed for children: the postmaster and go test must not hold the lock.
scripts/pg.sh start "$PG_DIR" "$PG_PORT" fast 8>&-

TEST_DATABASE_URL="$(scripts/pg.sh url "$PG_PORT" postgres)"
export TEST_DATABASE_URL
export STOREFRONT_REQUIRE_SERVICES=1

args=("$@")
if [ ${#args[@]} -eq 0 ]; then args=(./...); fi

# go test runs as a job in its own process group, so that a signal to this script (Ctrl-C,
# or CI's timeout sending TERM) reaches go test and the test binaries it started, and this
# script still gets to stop the cluster once they have exited.
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
