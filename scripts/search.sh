#!/usr/bin/env bash
# search.sh runs a private single-node search engine (OpenSearch 2.19, started by the Java
# launcher in tools/searchnode) for development, tests and benchmarks.
#
# Usage:
#   scripts/search.sh start DIR PORT   build the launcher if needed, start a node in DIR
#   scripts/search.sh stop DIR         stop the node in DIR (fine when not running)
#   scripts/search.sh status DIR       say whether the node in DIR runs
#   scripts/search.sh url PORT         print http://127.0.0.1:PORT
#   scripts/search.sh cluster-start DIR BASEPORT
#                                      start (or complete) a two-node cluster in DIR/node-1
#                                      (cluster manager and data, HTTP on BASEPORT) and
#                                      DIR/node-2 (data, BASEPORT+1)
#   scripts/search.sh cluster-stop DIR stop both nodes of the cluster in DIR
#   scripts/search.sh cluster-urls BASEPORT  print http://127.0.0.1:BASEPORT,http://...:BASEPORT+1
#   scripts/search.sh build            build the launcher (skipped when up to date)
#   scripts/search.sh destroy DIR      stop the node in DIR and delete DIR
#
# A node listens on 127.0.0.1:PORT only (HTTP; its transport port is an ephemeral one), with
# no security (it is a private dev node: never expose it), and keeps everything in DIR:
# data/, node.log (its output) and node.pid. It is a one-node cluster, so its indices are
# green with 0 replicas; auto-creation of indices is off (writes go through the aliases the
# application creates). Heap: -Xms512m -Xmx1g unless SEARCH_JAVA_OPTS says otherwise.
#
# Elastic publishes no Elasticsearch 8 analysis-common module (synonym_graph, stemmer,
# edge_ngram) as a Maven artifact, so the node is OpenSearch 2.19.6, the newest line that
# runs on Java 17; the application speaks to it with the Elasticsearch client.
#
# The launcher is built with Maven into tools/searchnode/target (searchnode.jar and lib/) the
# first time and whenever its pom or sources change; after that starting needs no network.
# If Java 17 or Maven are missing they are installed from Debian's packages (root only).
#
# A cluster's nodes talk over transport ports BASEPORT+10 and BASEPORT+11; its heaps are
# smaller (-Xms256m -Xmx512m each) unless SEARCH_JAVA_OPTS says otherwise. Stopping one node
# (`stop DIR/node-2`) and starting the cluster again brings it back into the cluster.
#
# Environment: JAVA_HOME (a Java 17+ runtime) overrides /usr/lib/jvm/java-17-openjdk-amd64;
# SEARCH_JAVA_OPTS replaces the JVM options; SEARCH_START_TIMEOUT (seconds, default 180)
# bounds the wait for the node.
set -euo pipefail
umask 022

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
readonly REPO_ROOT
readonly NODE_SRC="$REPO_ROOT/tools/searchnode"
readonly NODE_JAR="$NODE_SRC/target/searchnode.jar"
readonly DEFAULT_JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# java_bin prints the java to run, installing Java 17 when there is none.
java_bin() {
	local home=${JAVA_HOME:-$DEFAULT_JAVA_HOME}
	if [ ! -x "$home/bin/java" ]; then
		[ -z "${JAVA_HOME:-}" ] || die "JAVA_HOME=$JAVA_HOME has no bin/java"
		install_packages openjdk-17-jdk-headless
		[ -x "$home/bin/java" ] || die "Java 17 installed but $home/bin/java is missing"
	fi
	echo "$home/bin/java"
}

# up_to_date succeeds when the launcher's jar is newer than its pom and every source file.
up_to_date() {
	[ -f "$NODE_JAR" ] && [ -d "$NODE_SRC/target/lib" ] || return 1
	[ -z "$(find "$NODE_SRC/pom.xml" "$NODE_SRC/src" -newer "$NODE_JAR" -print -quit)" ]
}

# build builds the launcher unless it is up to date; one build at a time per checkout.
build() {
	up_to_date && return 0
	local java
	java=$(java_bin)
	command -v mvn >/dev/null || install_packages maven
	lock_file "$NODE_SRC/target/.build.lock" 6 900
	if ! up_to_date; then
		note "building the search node launcher in $NODE_SRC (the first build downloads ~45 MB of jars)"
		(cd "$NODE_SRC" && JAVA_HOME="$(dirname "$(dirname "$java")")" mvn -q -B package 6>&-) >&2 ||
			die "building $NODE_SRC failed"
	fi
	exec 6>&-
}

# node_pid DIR prints the pid of the node running in DIR, or fails.
node_pid() { pid_of "$1" node.pid java; }

# http_get URL prints the body of a GET, failing on connection errors and HTTP errors.
http_get() {
	curl -fsS --max-time 5 "$1" 2>/dev/null
}

# node_ready PORT succeeds when the node answers and its cluster is yellow or green.
node_ready() {
	local port=$1 health
	http_get "http://127.0.0.1:$port/" >/dev/null || return 1
	health=$(http_get "http://127.0.0.1:$port/_cluster/health?wait_for_status=yellow&timeout=2s") || return 1
	case "$health" in *'"status":"green"'* | *'"status":"yellow"'*) return 0 ;; esac
	return 1
}

# two_nodes PORT succeeds when the cluster of the node on PORT has two nodes.
two_nodes() {
	http_get "$(url "$1")/_cluster/health?wait_for_nodes=2&timeout=2s" | grep -q '"number_of_nodes":2'
}

# spawn DIR CMD... starts CMD in the background in DIR, in a session of its own, with every
# file descriptor above 2 closed (the node must not hold the locks of this script or of its
# callers) and its output appended to DIR/node.log; it writes the pid to DIR/node.pid.
spawn() {
	local dir=$1
	shift
	(
		close_fds
		cd "$dir"
		echo "$BASHPID" >"$dir/node.pid"
		# Not a process group leader (no job control here), so setsid does not fork: the pid
		# written above is the node's.
		exec setsid "$@" </dev/null >>"$dir/node.log" 2>&1
	) &
}

# pid_file DIR prints the pid that the node spawned in DIR wrote, once it has.
pid_file() { [ -s "$1/node.pid" ] && tr -dc '0-9' <"$1/node.pid"; }

cmd_start() {
	[ $# -eq 2 ] || usage
	start_node "$1" "$2" "${SEARCH_JAVA_OPTS:--Xms512m -Xmx1g}"
}

# start_node DIR PORT JAVA_OPTS [ARGS...] starts (or keeps) the node in DIR with HTTP on PORT;
# ARGS, after DIR and PORT, are the launcher's cluster arguments.
start_node() {
	local dir port=$2 java_opts=$3 java pid rc started=$SECONDS
	dir=$(abs_path "$1")
	shift 3
	check_port "$port"
	command -v curl >/dev/null || install_packages curl
	build
	java=$(java_bin)
	lock "$dir"
	mkdir -p "$dir"
	if pid=$(node_pid "$dir"); then
		if [ "$(cat "$dir/node.port" 2>/dev/null)" = "$port" ] && [ "$(cat "$dir/node.args" 2>/dev/null)" = "$*" ] &&
			node_ready "$port"; then
			note "already running: $dir on 127.0.0.1:$port (pid $pid)"
			return 0
		fi
		note "the node in $dir (pid $pid) does not serve port $port: restarting it"
		stop_pid "$dir" "$pid" || die "could not stop the node in $dir (pid $pid)"
	fi
	claim_port "$port"

	# shellcheck disable=SC2206 # the JVM options are a list
	local opts=($java_opts)
	mkdir -p "$dir/tmp"
	rm -f "$dir/node.pid"
	echo "$port" >"$dir/node.port"
	echo "$*" >"$dir/node.args"
	note "starting $dir on 127.0.0.1:$port"
	spawn "$dir" "$java" "${opts[@]}" -XX:+ExitOnOutOfMemoryError -Djava.io.tmpdir="$dir/tmp" \
		-Dlog4j2.disable.jmx=true -Dfile.encoding=UTF-8 -jar "$NODE_JAR" "$dir" "$port" "$@"
	pid=$(wait_until 5 0.05 pid_file "$dir") || die "the node in $dir did not start"
	rc=0
	WAIT_PID=$pid wait_until "${SEARCH_START_TIMEOUT:-180}" 0.5 node_ready "$port" || rc=$?
	case $rc in
	0) ;;
	2)
		show_log "$dir/node.log" 40
		die "the node in $dir exited before it answered on port $port"
		;;
	*)
		show_log "$dir/node.log" 40
		stop_pid "$dir" "$pid" || true
		die "the node in $dir did not answer on port $port within ${SEARCH_START_TIMEOUT:-180} s"
		;;
	esac
	unlock
	note "ready: $(url "$port") ($((SECONDS - started)) s)"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(abs_path "$1")
	if [ ! -d "$dir" ]; then
		note "no node in $dir: nothing to stop"
		return 0
	fi
	stop_server_in "$dir" node.pid java
}

cmd_status() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(abs_path "$1")
	status_in "$dir" node.pid java "port $(cat "$dir/node.port" 2>/dev/null || echo '?')"
}

cmd_destroy() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(abs_path "$1")
	[ -f "$dir/node.port" ] || return 0 # not a node's directory: leave it alone
	cmd_stop "$dir"
	remove_dir "$dir"
	note "deleted: $dir"
}

url() { echo "http://127.0.0.1:$1"; }

# The cluster of cluster-start: node-1 manages it and holds data, node-2 holds data.
cmd_cluster_start() {
	[ $# -eq 2 ] || usage
	local dir base=$2 name opts
	dir=$(abs_path "$1")
	check_port "$base"
	check_port $((base + 11))
	name="storefront-$(printf '%s' "$dir" | sha256sum | cut -c1-8)"
	opts=${SEARCH_JAVA_OPTS:--Xms256m -Xmx512m}
	start_node "$dir/node-1" "$base" "$opts" "$name" node-1 $((base + 10)) node-1 $((base + 10))
	start_node "$dir/node-2" $((base + 1)) "$opts" "$name" node-2 $((base + 11)) node-1 $((base + 10))
	wait_until "${SEARCH_START_TIMEOUT:-180}" 0.5 two_nodes "$base" ||
		die "the cluster in $dir has not two nodes after ${SEARCH_START_TIMEOUT:-180} s"
	note "cluster ready: $(cmd_cluster_urls "$base")"
}

cmd_cluster_stop() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(abs_path "$1")
	cmd_stop "$dir/node-2"
	cmd_stop "$dir/node-1"
}

cmd_cluster_urls() {
	[ $# -eq 1 ] || usage
	check_port "$1"
	echo "$(url "$1"),$(url $(($1 + 1)))"
}

cmd_url() {
	[ $# -eq 1 ] || usage
	check_port "$1"
	url "$1"
}

cmd_build() {
	[ $# -eq 0 ] || usage
	build
}

run_command "$@"
