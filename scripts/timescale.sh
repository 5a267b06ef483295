#!/usr/bin/env bash
# timescale.sh runs the test-only TimescaleDB engine: tools/pglite/server.mjs, a Node process
# serving PGlite (WASM PostgreSQL 17 with TimescaleDB and pg_trgm) over the PostgreSQL wire
# protocol. No native TimescaleDB is packaged for these machines; see tools/pglite/README.md.
#
# Usage:
#   scripts/timescale.sh start DIR PORT [fast|durable]  start the engine of DIR (fine when it runs)
#   scripts/timescale.sh stop DIR                       stop the engine of DIR (fine when not running)
#   scripts/timescale.sh status DIR                     say whether the engine of DIR runs
#   scripts/timescale.sh url PORT                       print the URL for pgx and psql
#
# The engine listens on 127.0.0.1:PORT only, trusts every connection (user and database in
# the URL are ignored: it is always superuser postgres) and serves one connection at a time,
# queueing the others. `fast` (the default) keeps the database in memory: it starts empty
# (but for the timescaledb and pg_trgm extensions) every time; `durable` keeps it in DIR/data.
# DIR holds pglite.pid, pglite.log (the previous start's log in pglite.log.old) and settings.
#
# `start` runs `npm ci` in tools/pglite first when node_modules is missing or older than
# package-lock.json (npm's configured registry), then waits up to TIMESCALE_START_TIMEOUT
# seconds (default 90) for the engine to answer with its timescaledb version.
#
# Environment: NODE (default: node in PATH) is the Node.js 20+ binary to run;
# TIMESCALE_START_TIMEOUT as above.
set -euo pipefail
umask 022

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
readonly REPO_ROOT
readonly TOOL_DIR="$REPO_ROOT/tools/pglite"
readonly SERVER="$TOOL_DIR/server.mjs"
readonly LOCK_STAMP=node_modules/.storefront-package-lock.sha256
readonly MIN_NODE_MAJOR=20

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check_port() {
	case "$1" in '' | *[!0-9]*) die "PORT must be a number, got '$1'" ;; esac
	if [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then die "PORT must be between 1 and 65535, got $1"; fi
}

url() { echo "postgres://postgres@127.0.0.1:$1/postgres?sslmode=disable"; }

# node_bin prints the Node.js binary, checking that it is recent enough.
node_bin() {
	local node=${NODE:-node} major
	command -v "$node" >/dev/null || die "Node.js $MIN_NODE_MAJOR+ not found; install it or set NODE"
	major=$("$node" -p 'process.versions.node.split(".")[0]')
	[ "$major" -ge "$MIN_NODE_MAJOR" ] || die "$node is Node.js $major; the engine needs $MIN_NODE_MAJOR+"
	command -v "$node"
}

# ensure_packages runs `npm ci` when node_modules was not installed from the current
# package-lock.json (a stamp of its hash, written after a successful install, tells). One
# install at a time per checkout: engines started together share tools/pglite.
ensure_packages() {
	local want lockfile
	want=$(sha256sum "$TOOL_DIR/package-lock.json" | cut -d' ' -f1)
	lockfile="${TMPDIR:-/tmp}/storefront-pglite-npm-$(printf '%s' "$TOOL_DIR" | sha256sum | cut -c1-12).lock"
	exec 7>"$lockfile"
	flock -w 600 7 || die "timed out waiting for $lockfile"
	if [ "$(cat "$TOOL_DIR/$LOCK_STAMP" 2>/dev/null)" != "$want" ]; then
		command -v npm >/dev/null || die "npm not found: it installs the engine's packages (tools/pglite)"
		note "installing the engine's packages: npm ci in tools/pglite"
		(cd "$TOOL_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in $TOOL_DIR failed"
		echo "$want" >"$TOOL_DIR/$LOCK_STAMP"
	fi
	exec 7>&-
}

# lock DIR serialises start/stop on one engine (flock on a file beside DIR), on fd 9.
lock() {
	local dir=$1 lockfile
	lockfile="$(dirname "$dir")/.$(basename "$dir").lock"
	mkdir -p "$(dirname "$dir")"
	exec 9>"$lockfile"
	flock -w 600 9 || die "timed out waiting for $lockfile"
}
unlock() { exec 9>&-; }

# detached CMD... becomes CMD (so $! is CMD's pid) in a session of its own, so that a Ctrl-C
# meant for the caller does not reach it, with every file descriptor above 2 closed: a daemon
# must not hold the locks of this script or of its callers (scripts/test.sh decides who
# stops the servers by who can take its lock). Run it in the background only.
detached() {
	local fd
	for fd in /proc/"$BASHPID"/fd/*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
	# setsid does not fork here: a background job of a script is no process group leader.
	cd / && exec setsid "$@"
}

# server_pid DIR prints the pid of the engine of DIR, or fails. The pid must be a process
# running our server.mjs with DIR's settings, so a stale pidfile or a recycled pid never counts.
server_pid() {
	local dir=$1 pid
	[ -f "$dir/pglite.pid" ] || return 1
	pid=$(tr -dc '0-9' <"$dir/pglite.pid")
	[ -n "$pid" ] || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$SERVER --port $(settings_port "$dir") " || return 1
	echo "$pid"
}

settings_port() { sed -n 's/^port=//p' "$1/settings" 2>/dev/null; }

# port_in_use PORT succeeds when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

show_log() {
	local dir=$1
	if [ -s "$dir/pglite.log" ]; then
		echo "--- last lines of $dir/pglite.log ---" >&2
		tail -n 30 "$dir/pglite.log" >&2 || true
	else
		echo "--- $dir/pglite.log is empty ---" >&2
	fi
}

# timescale_version PORT prints the engine's timescaledb version (empty while it is not
# ready). Without psql, the harness's ready line stands in for the query.
timescale_version() {
	local port=$1 dir=$2
	if command -v psql >/dev/null; then
		PGCONNECT_TIMEOUT=5 timeout 20 psql -X -w -q -At -d "$(url "$port")" \
			-c "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'" 2>/dev/null || true
	elif port_in_use "$port"; then
		sed -n 's/^ready: .*timescaledb \([^,]*\),.*/\1/p' "$dir/pglite.log" 2>/dev/null || true
	fi
}

# wait_ready DIR PORT PID waits until the engine answers with its timescaledb version and
# prints it; it fails at once when the process exits, and after TIMESCALE_START_TIMEOUT s.
wait_ready() {
	local dir=$1 port=$2 pid=$3 deadline=$((SECONDS + ${TIMESCALE_START_TIMEOUT:-90})) version
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			note "the engine of $dir exited during start-up"
			return 1
		fi
		version=$(timescale_version "$port" "$dir")
		if [ -n "$version" ]; then
			echo "$version"
			return 0
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			note "the engine of $dir did not answer on port $port within ${TIMESCALE_START_TIMEOUT:-90} s"
			return 1
		fi
		sleep 0.25
	done
}

# render_settings PORT MODE prints what identifies an engine's configuration.
render_settings() { printf 'port=%s\nmode=%s\n' "$1" "$2"; }

cmd_start() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
	local dir port=$2 mode=${3:-fast} node pid want started=$SECONDS version
	check_port "$port"
	case "$mode" in fast | durable) ;; *) die "mode must be fast or durable, got '$mode'" ;; esac
	dir=$(abs_path "$1")
	node=$(node_bin)
	ensure_packages
	mkdir -p "$dir"
	lock "$dir"
	want=$(render_settings "$port" "$mode")

	if pid=$(server_pid "$dir"); then
		if [ "$(cat "$dir/settings")" = "$want" ]; then
			# Only the port: a query would wait behind a test holding the engine's connection.
			port_in_use "$port" || die "the engine of $dir (pid $pid) does not accept connections on port $port; try: scripts/timescale.sh stop $dir"
			note "already running: $dir on 127.0.0.1:$port ($mode, pid $pid)"
			unlock
			return 0
		fi
		note "settings changed: restarting $dir"
		stop_pid "$dir" "$pid" 30 || die "could not stop $dir to apply new settings"
	fi
	port_in_use "$port" && die "port $port on 127.0.0.1 is already used by another server; stop it or pick another port"

	local args=("$SERVER" --port "$port")
	[ "$mode" = durable ] && args+=(--data-dir "$dir/data")
	printf '%s\n' "$want" >"$dir/settings"
	if [ -f "$dir/pglite.log" ]; then mv -f "$dir/pglite.log" "$dir/pglite.log.old"; fi
	note "starting $dir on 127.0.0.1:$port ($mode)"
	detached "$node" "${args[@]}" </dev/null >>"$dir/pglite.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/pglite.pid"
	if ! version=$(wait_ready "$dir" "$port" "$pid"); then
		# Stop what we started rather than leave a half-started engine holding the port.
		stop_pid "$dir" "$pid" 30 || true
		rm -f "$dir/pglite.pid"
		show_log "$dir"
		die "the engine of $dir failed to start (log: $dir/pglite.log)"
	fi
	unlock
	note "ready in $((SECONDS - started)) s: $(url "$port") (timescaledb $version, pid $pid)"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir pid
	dir=$(abs_path "$1")
	if [ ! -f "$dir/settings" ]; then
		note "no engine in $dir: nothing to stop"
		return 0
	fi
	lock "$dir"
	if ! pid=$(server_pid "$dir"); then
		note "not running: $dir"
		rm -f "$dir/pglite.pid"
		unlock
		return 0
	fi
	stop_pid "$dir" "$pid" 30 || die "could not stop the engine of $dir (pid $pid)"
	rm -f "$dir/pglite.pid"
	unlock
	note "stopped: $dir"
}

cmd_status() {
	[ $# -eq 1 ] || usage
	local dir pid
	dir=$(abs_path "$1")
	if pid=$(server_pid "$dir"); then
		echo "running: $dir on 127.0.0.1:$(settings_port "$dir") (pid $pid)"
	else
		echo "not running: $dir"
		return 3
	fi
}

cmd_url() {
	[ $# -eq 1 ] || usage
	check_port "$1"
	url "$1"
}

main() {
	[ $# -ge 1 ] || usage
	local cmd=$1
	shift
	case "$cmd" in
	start) cmd_start "$@" ;;
	stop) cmd_stop "$@" ;;
	status) cmd_status "$@" ;;
	url) cmd_url "$@" ;;
	-h | --help | help) usage 0 ;;
	*) usage ;;
	esac
}

# Run main unless sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi
