#!/usr/bin/env bash
# redis.sh runs private Redis servers and a private Redis Cluster for development, tests and
# benchmarks.
#
# Usage:
#   scripts/redis.sh start DIR PORT [durable|fast]  start a server in DIR (fine when it runs)
#   scripts/redis.sh stop DIR                       stop the server in DIR (fine when not running)
#   scripts/redis.sh status DIR                     say whether the server in DIR runs
#   scripts/redis.sh url PORT                       print redis://127.0.0.1:PORT/0
#   scripts/redis.sh cluster-start DIR BASEPORT     start a 3-master cluster on BASEPORT..BASEPORT+2
#   scripts/redis.sh cluster-stop DIR               stop every node of the cluster in DIR
#   scripts/redis.sh cluster-addrs BASEPORT         print 127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
#   scripts/redis.sh sentinel-start DIR BASEPORT    start afresh a master on BASEPORT, its replica
#                                                   on BASEPORT+1 and 3 Sentinels on BASEPORT+2..4
#   scripts/redis.sh sentinel-stop DIR              stop the master, replica and Sentinels in DIR
#   scripts/redis.sh sentinel-addrs BASEPORT        print the Sentinels' 127.0.0.1:P,... addresses
#   scripts/redis.sh bin                            print the absolute path of redis-server
#   scripts/redis.sh destroy DIR                    stop the server or cluster in DIR, delete DIR
#
# A server listens on 127.0.0.1:PORT only, with protected mode on and no password (it is a
# private dev server: never expose it), runs daemonized and keeps everything in DIR:
# redis.conf (rewritten at every start), redis.pid, redis.log and its data. `durable` (the
# default) keeps an append-only file (fsync every second) so data survives restarts; `fast`
# keeps nothing on disk, for throwaway test and bench data. Cluster nodes are fast servers in
# DIR/node-PORT with cluster-enabled yes, their nodes.conf there and cluster-node-timeout
# 2000 ms; a cluster that already formed is reused, a half-formed one is reset and formed again.
# A Sentinel group is throwaway (Sentinels and failovers rewrite the configurations): its
# master, replica and Sentinels (redis-server --sentinel, the same binary as Debian's
# redis-sentinel) live in DIR/node-PORT, watch the master named `storefront` with a quorum of
# 2, call it down after 1000 ms without an answer, and every start begins from empty servers.
#
# Nothing here touches the system's Redis service: no systemctl or service. If redis-server is
# missing it is installed from Debian's packages (root only), with service start-up disabled;
# should the package's service start anyway, the service our install started is stopped.
#
# Every server is capped at REDIS_MAXMEMORY (default 256mb) with maxmemory-policy volatile-lru:
# when full, Redis evicts the least recently used keys that have a TTL (cached catalog
# entries, persisted queries, sessions, rate-limit budgets: all repairable or disposable)
# and never the keys without one (rankings, the operation allowlist, revoked tokens); if
# those alone fill it, writes fail and the server carries on as with Redis down. Without a
# cap, clients that fill the cache would take the machine's memory.
#
# Environment: REDIS_BIN (directory holding redis-server and redis-cli) overrides the search in
# PATH and /usr/bin; REDIS_MAXMEMORY sets the cap (a Redis size such as 256mb or 2gb).
set -euo pipefail
umask 022

readonly CLUSTER_NODES=3
readonly SENTINEL_MASTER=storefront SENTINELS=3
readonly INSTALL_LOCK=/run/lock/storefront-redis-install.lock
# Debian's service keeps its data in /var/lib/redis.
readonly SYSTEM_DATA_DIR=/var/lib/redis

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# check_maxmemory fails unless REDIS_MAXMEMORY (when set) is a size Redis reads.
check_maxmemory() {
	[[ ${REDIS_MAXMEMORY:-256mb} =~ ^[0-9]+([kmg]b?|b)?$ ]] ||
		die "REDIS_MAXMEMORY must be a size such as 256mb or 2gb, got '${REDIS_MAXMEMORY}'"
}

# find_bins prints the directory holding redis-server and redis-cli.
find_bins() {
	local d
	if [ -n "${REDIS_BIN:-}" ]; then
		if [ ! -x "$REDIS_BIN/redis-server" ] || [ ! -x "$REDIS_BIN/redis-cli" ]; then
			die "REDIS_BIN=$REDIS_BIN lacks redis-server or redis-cli"
		fi
		realpath -- "$REDIS_BIN"
		return
	fi
	for d in "$(dirname "$(command -v redis-server 2>/dev/null || echo /nonexistent/x)")" /usr/bin; do
		if [ -x "$d/redis-server" ] && [ -x "$d/redis-cli" ]; then
			realpath -- "$d"
			return
		fi
	done
	return 1
}

# redis_pids prints the pids of every running redis-server process.
redis_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = redis-server ] && echo "${p#/proc/}"
	done
	return 0
}

# install_redis installs redis-server (and redis-tools, for redis-cli) from Debian's packages
# without letting the package start its service. One install at a time on this machine.
install_redis() {
	may_install redis-server REDIS_BIN redis-server
	lock_file "$INSTALL_LOCK" 8 900
	if ! find_bins >/dev/null; then # else a concurrent run installed it meanwhile
		note "redis-server not found: installing it from Debian's packages"
		local before rc=0
		before=" $(redis_pids | tr '\n' ' ') "
		apt_install redis-server || rc=$?
		stop_started_service "$before"
		[ "$rc" -eq 0 ] || die "installing redis-server failed (exit $rc)"
	fi
	exec 8>&-
}

# stop_started_service BEFORE stops a redis-server that the package install started as the
# system service: a process that did not run before the install (BEFORE lists the pids that
# did) and works in the service's data directory. Nothing else is touched.
stop_started_service() {
	local before=$1 pid
	for pid in $(redis_pids); do
		case "$before" in *" $pid "*) continue ;; esac
		[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$SYSTEM_DATA_DIR" ] || continue
		note "the package started the system's redis-server (pid $pid) despite policy-rc.d: stopping it"
		stop_pid "$SYSTEM_DATA_DIR" "$pid" 10 || true
	done
}

# bin_dir prints the directory of redis-server and redis-cli, installing them when missing.
bin_dir() {
	find_bins && return
	install_redis
	find_bins || die "redis-server installed but not found in PATH or /usr/bin"
}

# detached CMD... runs CMD from / with every file descriptor above 2 closed (close_fds).
detached() (
	close_fds
	cd / && exec "$@"
)

# server_pid DIR prints the pid of the redis-server running in DIR, or fails.
server_pid() { pid_of "$1" redis.pid redis-server; }

# cli BIN PORT ARGS... runs redis-cli against 127.0.0.1:PORT.
cli() {
	local bin=$1 port=$2
	shift 2
	"$bin/redis-cli" -h 127.0.0.1 -p "$port" "$@"
}

# daemon_conf DIR PORT prints the settings of every server and Sentinel: on 127.0.0.1:PORT,
# daemonized, everything in DIR.
daemon_conf() {
	cat <<-EOF
		bind 127.0.0.1
		port $2
		daemonize yes
		pidfile "$1/redis.pid"
		logfile "$1/redis.log"
		dir "$1"
	EOF
}

# render_conf DIR PORT MODE prints the configuration of a server (MODE: durable, fast or
# cluster).
render_conf() {
	local dir=$1 port=$2 mode=$3
	echo "# Written by scripts/redis.sh at every start ($mode mode); edits here are overwritten."
	daemon_conf "$dir" "$port"
	cat <<-EOF
		protected-mode yes
		loglevel notice
		always-show-logo no
		save ""
		maxmemory ${REDIS_MAXMEMORY:-256mb}
		maxmemory-policy volatile-lru
	EOF
	if [ "$mode" = durable ]; then
		cat <<-EOF
			appendonly yes
			appendfsync everysec
		EOF
	else
		# Throwaway data: nothing on disk, and DEBUG (such as DEBUG SLEEP) for tests that
		# simulate a slow server, from loopback connections only.
		cat <<-EOF
			appendonly no
			enable-debug-command local
		EOF
	fi
	if [ "$mode" = cluster ]; then
		cat <<-EOF
			cluster-enabled yes
			cluster-config-file nodes.conf
			cluster-node-timeout 2000
		EOF
	fi
}

# ping_reply BIN PORT prints what the server on PORT answers to PING (nothing when it does not).
ping_reply() { timeout 5 "$1/redis-cli" -h 127.0.0.1 -p "$2" ping 2>/dev/null || true; }

# pongs BIN PORT succeeds when the server on PORT answers PING with PONG.
pongs() { [ "$(ping_reply "$1" "$2")" = PONG ]; }

# wait_ready BIN DIR PORT waits until the server of DIR answers PING with PONG on PORT, for a
# minute, or for ten while it loads a large append-only file; it gives up (status 2) when the
# server exits.
wait_ready() {
	local bin=$1 dir=$2 port=$3 pid rc=0
	# The pidfile is written once the server listens.
	pid=$(wait_until 10 0.1 server_pid "$dir") || return 2
	WAIT_PID=$pid wait_until 60 0.1 pongs "$bin" "$port" || rc=$?
	if [ "$rc" -eq 1 ] && [[ $(ping_reply "$bin" "$port") == *LOADING* ]]; then
		rc=0
		WAIT_PID=$pid wait_until 540 0.1 pongs "$bin" "$port" || rc=$?
	fi
	return "$rc"
}

# start_server BIN DIR PORT MODE starts (or keeps) the server of DIR; the caller holds no lock
# on DIR.
start_server() {
	local bin=$1 dir=$2 port=$3 mode=$4 want_conf pid
	case "$dir" in *[\"\\$'\n']*) die "DIR must not contain quotes, backslashes or newlines: $dir" ;; esac
	mkdir -p "$dir"
	lock "$dir"
	want_conf=$(render_conf "$dir" "$port" "$mode")

	if pid=$(server_pid "$dir"); then
		if [ "$(cat "$dir/redis.conf" 2>/dev/null)" != "$want_conf" ]; then
			note "settings changed: restarting $dir"
			stop_pid "$dir" "$pid" || die "could not stop $dir to apply new settings"
		elif reuse "$dir on 127.0.0.1:$port ($mode, pid $pid)" "$dir/redis.log" "scripts/redis.sh stop $dir" \
			wait_ready "$bin" "$dir" "$port"; then
			unlock
			return 0
		fi
	fi

	claim_port "$port"

	rm -f "$dir/redis.pid"
	printf '%s\n' "$want_conf" >"$dir/redis.conf"
	note "starting $dir on 127.0.0.1:$port ($mode)"
	detached "$bin/redis-server" "$dir/redis.conf" </dev/null >/dev/null 2>>"$dir/redis.log" ||
		{ show_log "$dir/redis.log"; die "redis-server failed to start in $dir"; }
	if ! wait_ready "$bin" "$dir" "$port"; then
		show_log "$dir/redis.log"
		die "the server in $dir did not answer on port $port"
	fi
	unlock
	note "ready: $(url "$port")"
}

# stop_server DIR stops the server of DIR when it runs.
stop_server() {
	if [ ! -f "$1/redis.conf" ]; then
		note "no server in $1: nothing to stop"
		return 0
	fi
	stop_server_in "$1" redis.pid redis-server
}

cmd_start() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
	local dir port=$2 mode=${3:-durable} bin
	check_port "$port"
	case "$mode" in durable | fast) ;; *) die "mode must be durable or fast, got '$mode'" ;; esac
	check_maxmemory
	dir=$(abs_path "$1")
	bin=$(bin_dir)
	start_server "$bin" "$dir" "$port" "$mode"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	stop_server "$(abs_path "$1")"
}

cmd_status() {
	[ $# -eq 1 ] || usage
	status_in "$(abs_path "$1")" redis.pid redis-server
}

url() { echo "redis://127.0.0.1:$1/0"; }

cmd_url() {
	[ $# -eq 1 ] || usage
	check_port "$1"
	url "$1"
}

# cluster_ports BASEPORT prints the ports of the cluster's nodes.
cluster_ports() {
	local base=$1
	check_port "$base"
	check_port $((base + CLUSTER_NODES - 1))
	seq "$base" $((base + CLUSTER_NODES - 1))
}

cmd_cluster_addrs() {
	[ $# -eq 1 ] || usage
	local ports
	ports=$(cluster_ports "$1")
	addrs <<<"$ports"
}

# addrs reads ports, one a line, and prints their addresses 127.0.0.1:PORT comma-separated.
addrs() { sed 's/^/127.0.0.1:/' | paste -sd,; }

# info_field BIN PORT FIELD prints a field of CLUSTER INFO on PORT (empty when it fails).
info_field() {
	cli "$1" "$2" cluster info 2>/dev/null | tr -d '\r' | sed -n "s/^$3://p" || true
}

# node_addrs BIN PORT prints the sorted addresses of the nodes PORT knows (itself included).
node_addrs() {
	cli "$1" "$2" cluster nodes 2>/dev/null | awk '{ sub(/@.*/, "", $2); print $2 }' | sort || true
}

# cluster_shape BIN PORTS... prints `formed` when every node knows exactly the others and all
# 16384 slots are assigned, `fresh` when no node knows another or owns a slot, else `mixed`.
cluster_shape() {
	local bin=$1 p want known assigned fresh=1 formed=1
	shift
	want=$(for p in "$@"; do echo "127.0.0.1:$p"; done | sort)
	for p in "$@"; do
		known=$(info_field "$bin" "$p" cluster_known_nodes)
		assigned=$(info_field "$bin" "$p" cluster_slots_assigned)
		if [ "$known" != 1 ] || [ "$assigned" != 0 ]; then fresh=""; fi
		if [ "$assigned" != 16384 ] || [ "$(node_addrs "$bin" "$p")" != "$want" ]; then formed=""; fi
	done
	if [ -n "$formed" ]; then
		echo formed
	elif [ -n "$fresh" ]; then
		echo fresh
	else
		echo mixed
	fi
}

# cluster_ok BIN PORTS... succeeds when every node says cluster_state:ok and redis-cli's
# cluster check passes.
cluster_ok() {
	local bin=$1 p
	shift
	for p in "$@"; do
		[ "$(info_field "$bin" "$p" cluster_state)" = ok ] || return 1
	done
	timeout 30 "$bin/redis-cli" --cluster check "127.0.0.1:$1" >/dev/null 2>&1
}

cmd_cluster_start() {
	[ $# -eq 2 ] || usage
	local dir base=$2 bin ports p shape out started=$SECONDS
	check_port "$base"
	check_port $((base + CLUSTER_NODES - 1))
	check_maxmemory
	dir=$(abs_path "$1")
	mapfile -t ports < <(cluster_ports "$base")
	bin=$(bin_dir)
	lock "$dir" 7 900
	for p in "${ports[@]}"; do
		start_server "$bin" "$dir/node-$p" "$p" cluster
	done

	shape=$(cluster_shape "$bin" "${ports[@]}")
	if [ "$shape" = mixed ]; then
		# A half-formed cluster (an interrupted create, a node whose nodes.conf was lost):
		# its data is throwaway, so empty every node and form the cluster afresh.
		note "the nodes in $dir do not form one cluster: resetting them"
		for p in "${ports[@]}"; do
			cli "$bin" "$p" flushall >/dev/null 2>&1 || true
			cli "$bin" "$p" cluster reset hard >/dev/null ||
				die "CLUSTER RESET HARD failed on 127.0.0.1:$p"
		done
		shape=fresh
	fi
	if [ "$shape" = fresh ]; then
		note "creating the cluster on ports ${ports[*]}"
		local addrs=()
		for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
		if ! out=$(timeout 120 "$bin/redis-cli" --cluster create "${addrs[@]}" \
			--cluster-replicas 0 --cluster-yes 2>&1 </dev/null); then
			printf '%s\n' "$out" >&2
			die "redis-cli --cluster create failed"
		fi
		printf '%s\n' "$out" >"$dir/create.log"
	else
		note "the cluster in $dir already exists"
	fi

	if ! wait_until 60 0.2 cluster_ok "$bin" "${ports[@]}"; then
		for p in "${ports[@]}"; do
			echo "--- 127.0.0.1:$p: cluster_state:$(info_field "$bin" "$p" cluster_state)" >&2
		done
		die "the cluster on ports ${ports[*]} is not ok after 60 s"
	fi
	note "cluster ready: $(cmd_cluster_addrs "$base") ($((SECONDS - started)) s)"
}

# sentinel_ports BASEPORT prints the ports of the Sentinels of the group on BASEPORT.
sentinel_ports() {
	check_port "$1"
	check_port $(($1 + 1 + SENTINELS))
	seq $(($1 + 2)) $(($1 + 1 + SENTINELS))
}

cmd_sentinel_addrs() {
	[ $# -eq 1 ] || usage
	local ports
	ports=$(sentinel_ports "$1")
	addrs <<<"$ports"
}

# start_sentinel BIN DIR PORT MASTER_PORT starts a Sentinel in DIR watching the master on
# MASTER_PORT.
start_sentinel() {
	local bin=$1 dir=$2 port=$3 master=$4
	mkdir -p "$dir"
	{
		echo "# Written by scripts/redis.sh sentinel-start; the Sentinel rewrites it as it learns."
		daemon_conf "$dir" "$port"
		cat <<-EOF
			sentinel monitor $SENTINEL_MASTER 127.0.0.1 $master 2
			sentinel down-after-milliseconds $SENTINEL_MASTER 1000
			sentinel failover-timeout $SENTINEL_MASTER 10000
			sentinel parallel-syncs $SENTINEL_MASTER 1
		EOF
	} >"$dir/redis.conf"
	detached "$bin/redis-server" "$dir/redis.conf" --sentinel </dev/null >/dev/null 2>>"$dir/redis.log" ||
		{ show_log "$dir/redis.log"; die "the Sentinel in $dir failed to start"; }
	wait_until 30 0.1 pongs "$bin" "$port" || {
		show_log "$dir/redis.log"
		die "the Sentinel in $dir does not answer on port $port"
	}
}

# sentinel_field BIN PORT FIELD prints a field of what the Sentinel on PORT knows of the master.
sentinel_field() {
	cli "$1" "$2" sentinel master "$SENTINEL_MASTER" 2>/dev/null | tr -d '\r' |
		awk -v f="$3" 'prev == f { print; exit } { prev = $0 }' || true
}

# knows_group BIN PORT succeeds when the Sentinel on PORT knows the replica and the other
# Sentinels.
knows_group() {
	[ "$(sentinel_field "$1" "$2" num-slaves)" = 1 ] &&
		[ "$(sentinel_field "$1" "$2" num-other-sentinels)" = $((SENTINELS - 1)) ]
}

# linked BIN PORT succeeds when the replica on PORT is in sync with its master.
linked() { cli "$1" "$2" info replication 2>/dev/null | grep -q '^master_link_status:up'; }

cmd_sentinel_start() {
	[ $# -eq 2 ] || usage
	local dir base=$2 bin p started=$SECONDS
	dir=$(abs_path "$1")
	check_port "$base"
	bin=$(bin_dir)
	cmd_cluster_stop "$dir"
	lock "$dir" 7 900
	rm -rf -- "${dir:?}"/node-*
	start_server "$bin" "$dir/node-$base" "$base" fast
	start_server "$bin" "$dir/node-$((base + 1))" $((base + 1)) fast
	cli "$bin" $((base + 1)) replicaof 127.0.0.1 "$base" >/dev/null
	wait_until 60 0.1 linked "$bin" $((base + 1)) || die "the replica on port $((base + 1)) did not sync with its master"
	for p in $(sentinel_ports "$base"); do
		start_sentinel "$bin" "$dir/node-$p" "$p" "$base"
	done
	# Ready once every Sentinel knows the replica and the other Sentinels.
	for p in $(sentinel_ports "$base"); do
		wait_until 60 0.1 knows_group "$bin" "$p" || die "the Sentinel on port $p does not know the whole group after 60 s"
	done
	note "sentinels ready: $(cmd_sentinel_addrs "$base") watching $SENTINEL_MASTER ($((SECONDS - started)) s)"
}

# node_dirs DIR prints the node directories of the cluster in DIR.
node_dirs() {
	local d
	for d in "$1"/node-*/; do
		[ -f "$d/redis.conf" ] && echo "${d%/}"
	done
	return 0
}

cmd_cluster_stop() {
	[ $# -eq 1 ] || usage
	local dir d nodes any="" failed=""
	dir=$(abs_path "$1")
	if [ ! -d "$dir" ]; then
		note "no cluster in $dir: nothing to stop"
		return 0
	fi
	lock "$dir" 7 900
	mapfile -t nodes < <(node_dirs "$dir")
	for d in "${nodes[@]}"; do
		any=1
		# One node that will not stop must not keep the others running.
		(stop_server "$d") || failed=1
	done
	[ -n "$any" ] || note "no cluster nodes in $dir: nothing to stop"
	[ -z "$failed" ] || die "some nodes of the cluster in $dir did not stop"
}

# cmd_destroy DIR stops the server or the cluster in DIR and deletes DIR; it leaves alone a
# DIR that holds neither (so that `make clean` may call it on every directory).
cmd_destroy() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(abs_path "$1")
	if [ -f "$dir/redis.conf" ]; then
		stop_server "$dir"
	elif [ -n "$(node_dirs "$dir" 2>/dev/null)" ]; then
		cmd_cluster_stop "$dir"
	else
		return 0
	fi
	remove_dir "$dir"
	note "deleted: $dir"
}

cmd_bin() {
	[ $# -eq 0 ] || usage
	local bin
	bin=$(bin_dir)
	echo "$bin/redis-server"
}

# cmd_sentinel_stop DIR stops a Sentinel group as cluster-stop stops a cluster: every node.
cmd_sentinel_stop() { cmd_cluster_stop "$@"; }

run_command "$@"
