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
	is_root || die "redis-server not found; install it (apt-get install redis-server) or set REDIS_BIN"
	command -v apt-get >/dev/null || die "redis-server not found and apt-get is unavailable; set REDIS_BIN"
	mkdir -p "$(dirname "$INSTALL_LOCK")"
	exec 8>"$INSTALL_LOCK"
	flock -w 900 8 || die "timed out waiting for $INSTALL_LOCK"
	if find_bins >/dev/null; then # a concurrent run installed it meanwhile
		exec 8>&-
		return 0
	fi
	note "redis-server not found: installing it from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
		-o Dpkg::Options::=--force-confold)

	# policy-rc.d exit 101 forbids maintainer scripts to start services (invoke-rc.d and
	# deb-systemd-invoke honour it). Keep an existing one; remove ours afterwards.
	local policy=/usr/sbin/policy-rc.d ours="" before rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# temporary, from storefront scripts/redis.sh: start no service\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		ours=1
	fi
	before=" $(redis_pids | tr '\n' ' ') "
	{
		"${apt[@]}" update &&
			"${apt[@]}" install --no-install-recommends redis-server
	} >&2 || rc=$?
	if [ -n "$ours" ]; then rm -f "$policy"; fi
	stop_started_service "$before"
	exec 8>&-
	[ "$rc" -eq 0 ] || die "installing redis-server failed (exit $rc)"
}

# stop_started_service BEFORE stops a redis-server that the package install started as the
# system service: a process that did not run before the install (BEFORE lists the pids that
# did) and works in the service's data directory. Nothing else is touched.
stop_started_service() {
	local before=$1 pid _
	for pid in $(redis_pids); do
		case "$before" in *" $pid "*) continue ;; esac
		[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$SYSTEM_DATA_DIR" ] || continue
		note "the package started the system's redis-server (pid $pid) despite policy-rc.d: stopping it"
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
	done
}

# bin_dir prints the directory of redis-server and redis-cli, installing them when missing.
bin_dir() {
	find_bins && return
	install_redis
	find_bins || die "redis-server installed but not found in PATH or /usr/bin"
}

# detached CMD... runs CMD with every file descriptor above 2 closed: a daemon must not hold
# the locks of this script or of its callers (scripts/test.sh decides who stops the servers
# by who can take its lock).
detached() (
	for fd in /proc/"$BASHPID"/fd/*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
	cd / && exec "$@"
)

# server_pid DIR prints the pid of the redis-server running in DIR, or fails. The pid must be
# a redis-server working in DIR, so a stale pidfile or a recycled pid never counts.
server_pid() {
	local dir=$1 pid
	[ -f "$dir/redis.pid" ] || return 1
	pid=$(tr -dc '0-9' <"$dir/redis.pid")
	[ -n "$pid" ] || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = redis-server ] || return 1
	[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$dir" ] || return 1
	echo "$pid"
}

# cli BIN PORT ARGS... runs redis-cli against 127.0.0.1:PORT.
cli() {
	local bin=$1 port=$2
	shift 2
	"$bin/redis-cli" -h 127.0.0.1 -p "$port" "$@"
}

# render_conf DIR PORT MODE prints the configuration of a server (MODE: durable, fast or
# cluster).
render_conf() {
	local dir=$1 port=$2 mode=$3
	cat <<-EOF
		# Written by scripts/redis.sh at every start ($mode mode); edits here are overwritten.
		bind 127.0.0.1
		protected-mode yes
		port $port
		daemonize yes
		pidfile "$dir/redis.pid"
		logfile "$dir/redis.log"
		dir "$dir"
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

# wait_ready BIN DIR PORT waits until the server of DIR answers PING with PONG on PORT; it
# waits through the loading of a large append-only file, and gives up when the server exits.
wait_ready() {
	local bin=$1 dir=$2 port=$3 started=$SECONDS reply
	while :; do
		reply=$(timeout 5 "$bin/redis-cli" -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)
		[ "$reply" = PONG ] && return 0
		if ! server_pid "$dir" >/dev/null; then
			# The pidfile is written only once the server listens.
			[ $((SECONDS - started)) -lt 10 ] || return 2
		fi
		case "$reply" in
		*LOADING*) [ $((SECONDS - started)) -lt 600 ] || return 1 ;;
		*) [ $((SECONDS - started)) -lt 60 ] || return 1 ;;
		esac
		sleep 0.1
	done
}

# start_server BIN DIR PORT MODE starts (or keeps) the server of DIR; the caller holds no lock
# on DIR.
start_server() {
	local bin=$1 dir=$2 port=$3 mode=$4 want_conf pid rc
	case "$dir" in *[\"\\$'\n']*) die "DIR must not contain quotes, backslashes or newlines: $dir" ;; esac
	mkdir -p "$dir"
	lock "$dir"
	want_conf=$(render_conf "$dir" "$port" "$mode")

	if pid=$(server_pid "$dir"); then
		if [ "$(cat "$dir/redis.conf" 2>/dev/null)" = "$want_conf" ]; then
			rc=0
			wait_ready "$bin" "$dir" "$port" || rc=$?
			case $rc in
			0)
				note "already running: $dir on 127.0.0.1:$port ($mode, pid $pid)"
				unlock
				return 0
				;;
			2) note "the server in $dir went away while we waited for it; starting it" ;;
			*)
				show_log "$dir/redis.log"
				die "the server in $dir (pid $pid) runs but does not answer on port $port; try: scripts/redis.sh stop $dir"
				;;
			esac
		else
			note "settings changed: restarting $dir"
			stop_pid "$dir" "$pid" || die "could not stop $dir to apply new settings"
		fi
	fi

	# Refuse to start when another server already holds the port.
	if port_in_use "$port"; then
		die "port $port on 127.0.0.1 is already used by another server; stop it or pick another port"
	fi

	rm -f "$dir/redis.pid"
	printf '%s\n' "$want_conf" >"$dir/redis.conf"
	note "starting $dir on 127.0.0.1:$port ($mode)"
	detached "$bin/redis-server" "$dir/redis.conf" </dev/null >/dev/null 2>>"$dir/redis.log" ||
		{ show_log "$dir/redis.log"; die "redis-server failed to start in $dir"; }
	rc=0
	wait_ready "$bin" "$dir" "$port" || rc=$?
	if [ "$rc" -ne 0 ]; then
		show_log "$dir/redis.log"
		die "the server in $dir did not answer on port $port"
	fi
	unlock
	note "ready: $(url "$port")"
}

# stop_server DIR stops the server of DIR when it runs.
stop_server() {
	local dir=$1 pid
	if [ ! -f "$dir/redis.conf" ]; then
		note "no server in $dir: nothing to stop"
		return 0
	fi
	lock "$dir"
	if ! pid=$(server_pid "$dir"); then
		note "not running: $dir"
		rm -f "$dir/redis.pid"
		unlock
		return 0
	fi
	stop_pid "$dir" "$pid" || die "could not stop the server in $dir (pid $pid)"
	rm -f "$dir/redis.pid"
	unlock
	note "stopped: $dir"
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
	local dir pid
	dir=$(abs_path "$1")
	if pid=$(server_pid "$dir"); then
		echo "running: $dir (pid $pid)"
	else
		echo "not running: $dir"
		return 3
	fi
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
	local addrs=() p
	for p in $(cluster_ports "$1"); do addrs+=("127.0.0.1:$p"); done
	(IFS=,; echo "${addrs[*]}")
}

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

# cluster_ok BIN PORTS... succeeds when every node says cluster_state:ok.
cluster_ok() {
	local bin=$1 p
	shift
	for p in "$@"; do
		[ "$(info_field "$bin" "$p" cluster_state)" = ok ] || return 1
	done
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

	local deadline=$((SECONDS + 60))
	until cluster_ok "$bin" "${ports[@]}" &&
		timeout 30 "$bin/redis-cli" --cluster check "127.0.0.1:${ports[0]}" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			for p in "${ports[@]}"; do
				echo "--- 127.0.0.1:$p: cluster_state:$(info_field "$bin" "$p" cluster_state)" >&2
			done
			die "the cluster on ports ${ports[*]} is not ok after 60 s"
		fi
		sleep 0.2
	done
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
	local addrs=() p
	for p in $(sentinel_ports "$1"); do addrs+=("127.0.0.1:$p"); done
	(IFS=,; echo "${addrs[*]}")
}

# start_sentinel BIN DIR PORT MASTER_PORT starts a Sentinel in DIR watching the master on
# MASTER_PORT.
start_sentinel() {
	local bin=$1 dir=$2 port=$3 master=$4
	mkdir -p "$dir"
	cat >"$dir/redis.conf" <<-EOF
		# Written by scripts/redis.sh sentinel-start; the Sentinel rewrites it as it learns.
		bind 127.0.0.1
		port $port
		daemonize yes
		pidfile "$dir/redis.pid"
		logfile "$dir/redis.log"
		dir "$dir"
		sentinel monitor $SENTINEL_MASTER 127.0.0.1 $master 2
		sentinel down-after-milliseconds $SENTINEL_MASTER 1000
		sentinel failover-timeout $SENTINEL_MASTER 10000
		sentinel parallel-syncs $SENTINEL_MASTER 1
	EOF
	detached "$bin/redis-server" "$dir/redis.conf" --sentinel </dev/null >/dev/null 2>>"$dir/redis.log" ||
		{ show_log "$dir/redis.log"; die "the Sentinel in $dir failed to start"; }
	local deadline=$((SECONDS + 30))
	until [ "$(timeout 5 "$bin/redis-cli" -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; do
		[ "$SECONDS" -lt "$deadline" ] || { show_log "$dir/redis.log"; die "the Sentinel in $dir does not answer on port $port"; }
		sleep 0.1
	done
}

# sentinel_field BIN PORT FIELD prints a field of what the Sentinel on PORT knows of the master.
sentinel_field() {
	cli "$1" "$2" sentinel master "$SENTINEL_MASTER" 2>/dev/null | tr -d '\r' |
		awk -v f="$3" 'prev == f { print; exit } { prev = $0 }' || true
}

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
	local deadline=$((SECONDS + 60))
	until cli "$bin" $((base + 1)) info replication 2>/dev/null | grep -q '^master_link_status:up'; do
		[ "$SECONDS" -lt "$deadline" ] || die "the replica on port $((base + 1)) did not sync with its master"
		sleep 0.1
	done
	for p in $(sentinel_ports "$base"); do
		start_sentinel "$bin" "$dir/node-$p" "$p" "$base"
	done
	# Ready once every Sentinel knows the replica and the other Sentinels.
	for p in $(sentinel_ports "$base"); do
		until [ "$(sentinel_field "$bin" "$p" num-slaves)" = 1 ] &&
			[ "$(sentinel_field "$bin" "$p" num-other-sentinels)" = $((SENTINELS - 1)) ]; do
			[ "$SECONDS" -lt "$deadline" ] || die "the Sentinel on port $p does not know the whole group after 60 s"
			sleep 0.1
		done
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
	rm -rf -- "$dir" "$(dirname "$dir")/.$(basename "$dir").lock"
	note "deleted: $dir"
}

cmd_bin() {
	[ $# -eq 0 ] || usage
	local bin
	bin=$(bin_dir)
	echo "$bin/redis-server"
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
	cluster-start) cmd_cluster_start "$@" ;;
	cluster-stop) cmd_cluster_stop "$@" ;;
	cluster-addrs) cmd_cluster_addrs "$@" ;;
	sentinel-start) cmd_sentinel_start "$@" ;;
	sentinel-stop) cmd_cluster_stop "$@" ;;
	sentinel-addrs) cmd_sentinel_addrs "$@" ;;
	bin) cmd_bin "$@" ;;
	destroy) cmd_destroy "$@" ;;
	-h | --help | help) usage 0 ;;
	*) usage ;;
	esac
}

# Run main unless sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi
