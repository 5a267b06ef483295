# lib.sh holds what the scripts share (messages, usage and commands, ports, locks, logs,
# processes and waiting for them, packages); every script in scripts/ but test.sh and
# bench_analytics.sh sources it first, and its messages carry the name of the script that
# sourced it.
# shellcheck shell=bash

readonly SCRIPT_NAME=${0##*/}

die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }
note() { echo "$SCRIPT_NAME: $*" >&2; }

# usage prints the script's "# Usage:" comment block and exits with $1 (default 2).
usage() {
	sed -n '/^# Usage:/,/^#$/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "${1:-2}"
}

# run_command CMD ARGS... runs the script's function cmd_CMD, dashes in CMD read as
# underscores (`redis.sh cluster-start DIR PORT` runs cmd_cluster_start DIR PORT): a script
# is its cmd_ functions and, last, `run_command "$@"`. help, -h and --help print the usage;
# no command or an unknown one print it and exit with status 2.
run_command() {
	[ $# -ge 1 ] || usage
	local cmd=$1
	shift
	case "$cmd" in
	-h | --help | help) usage 0 ;;
	*[!a-z-]*) usage ;;
	esac
	declare -F "cmd_${cmd//-/_}" >/dev/null || usage
	"cmd_${cmd//-/_}" "$@"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

abs_path() { realpath -m -- "$1"; }

# check_port PORT dies unless PORT is a TCP port number.
check_port() {
	case "$1" in '' | *[!0-9]*) die "PORT must be a number, got '$1'" ;; esac
	if [ "$1" -lt 1 ] || [ "$1" -gt 65535 ]; then die "PORT must be between 1 and 65535, got $1"; fi
}

# port_in_use PORT succeeds when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# claim_port PORT dies when another server already holds PORT on 127.0.0.1: a server of
# ours must not start beside it (its clients would reach the other one).
claim_port() {
	if port_in_use "$1"; then
		die "port $1 on 127.0.0.1 is already used by another server; stop it or pick another port"
	fi
}

# lock_file FILE [FD [SECONDS]] takes an flock on FILE, held on file descriptor FD (default 9)
# until that descriptor is closed or the script ends, waiting at most SECONDS (default 600).
lock_file() {
	local file=$1 fd=${2:-9} wait=${3:-600}
	mkdir -p "$(dirname "$file")"
	eval "exec $fd>\"\$file\""
	flock -w "$wait" "$fd" || die "timed out waiting for $file"
}

# lock_path DIR prints the lock file of the server or cluster of DIR: .NAME.lock beside DIR.
lock_path() { echo "$(dirname "$1")/.$(basename "$1").lock"; }

# lock DIR [FD [SECONDS]] serialises start/stop/destroy on the server or cluster of DIR: a
# lock_file on lock_path DIR.
lock() { lock_file "$(lock_path "$1")" "${@:2}"; }

# unlock releases the lock taken on file descriptor 9.
unlock() { exec 9>&-; }

# remove_dir DIR deletes DIR and its lock file (destroy, once the server has stopped).
remove_dir() { rm -rf -- "$1" "$(lock_path "$1")"; }

# show_log FILE [LINES] prints the last LINES (default 30) of a server's log FILE to stderr,
# when there is one: what a failed start or wait shows.
show_log() {
	local file=$1 lines=${2:-30}
	if [ -f "$file" ]; then
		echo "--- last lines of $file ---" >&2
		tail -n "$lines" "$file" >&2 || true
	fi
}

# pid_of DIR FILE COMM prints the pid that DIR/FILE holds when it is a running COMM process
# working in DIR, or fails: a stale pid file or a recycled pid never counts.
pid_of() {
	local dir=$1 file=$1/$2 comm=$3 pid
	[ -f "$file" ] || return 1
	pid=$(tr -dc '0-9' <"$file")
	[ -n "$pid" ] || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
	[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$dir" ] || return 1
	echo "$pid"
}

# close_fds closes every file descriptor above 2 of the (sub)shell that calls it: a server
# started from there must not hold the locks of this script or of its callers
# (scripts/test.sh decides who stops the servers by who can take its lock).
close_fds() {
	local fd
	for fd in /proc/"$BASHPID"/fd/*; do
		fd=${fd##*/}
		if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
	done
}

# wait_until SECONDS PAUSE PROBE... runs PROBE every PAUSE seconds until it succeeds (status
# 0; what PROBE prints then is printed), or gives up with status 1 once SECONDS have passed.
# With WAIT_PID set to a process id (`WAIT_PID=$pid wait_until ...`), it gives up early, with
# status 2, when that process has exited: a server that died while we waited for it.
wait_until() {
	local deadline=$((SECONDS + $1)) pause=$2
	shift 2
	until "$@"; do
		if [ -n "${WAIT_PID:-}" ] && ! kill -0 "$WAIT_PID" 2>/dev/null; then return 2; fi
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep "$pause"
	done
}

# reuse WHAT LOG HINT WAIT... decides on a server that already runs with the settings we
# want: it succeeds, saying so, when `WAIT...` (a wait for the server to answer) does; fails,
# so that the caller starts the server, when WAIT says the server exited (status 2); and dies
# showing its LOG when it runs but does not answer, with HINT (what to try) in the message.
reuse() {
	local what=$1 log=$2 hint=$3 rc=0
	shift 3
	"$@" || rc=$?
	case $rc in
	0) note "already running: $what" ;;
	2)
		note "the server went away while we waited for it: starting $what"
		return 1
		;;
	*)
		show_log "$log"
		die "$what runs but does not answer; try: $hint"
		;;
	esac
}

# stop_pid DIR PID [GRACE] stops the process PID of DIR: SIGTERM (servers save and close on
# it), then SIGKILL when it has not exited within GRACE seconds (default 60). It fails if
# the process outlives both.
stop_pid() {
	local dir=$1 pid=$2 grace=${3:-60}
	kill -TERM "$pid" 2>/dev/null || return 0
	WAIT_PID="" wait_until "$grace" 0.1 gone "$pid" && return 0
	note "$dir (pid $pid) did not exit within $grace s: killing it"
	kill -KILL "$pid" 2>/dev/null || return 0
	WAIT_PID="" wait_until 10 0.1 gone "$pid"
}

# gone PID succeeds once the process PID has exited.
gone() { ! kill -0 "$1" 2>/dev/null; }

# status_in DIR FILE COMM [DETAIL] says whether the server of DIR runs (pid_of DIR FILE COMM):
# `running: DIR (pid PID, DETAIL)`, else `not running: DIR` and status 3.
status_in() {
	local pid
	if pid=$(pid_of "$1" "$2" "$3"); then
		echo "running: $1 (pid $pid${4:+, $4})"
	else
		echo "not running: $1"
		return 3
	fi
}

# stop_server_in DIR FILE COMM stops the server of DIR whose pid DIR/FILE holds (pid_of DIR
# FILE COMM), under the lock of DIR, and removes FILE; fine when it does not run.
stop_server_in() {
	local dir=$1 file=$2 comm=$3 pid
	lock "$dir"
	if pid=$(pid_of "$dir" "$file" "$comm"); then
		stop_pid "$dir" "$pid" || die "could not stop the server in $dir (pid $pid)"
		note "stopped: $dir"
	else
		note "not running: $dir"
	fi
	rm -f "$dir/$file"
	unlock
}

# apt_install PKG... installs Debian packages (root only) without letting their maintainer
# scripts start services: policy-rc.d exit 101 forbids that (invoke-rc.d and
# deb-systemd-invoke honour it); an existing policy-rc.d is kept, ours removed afterwards.
# apt's output goes to stderr. It fails with apt's status.
apt_install() {
	export DEBIAN_FRONTEND=noninteractive
	local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
		-o Dpkg::Options::=--force-confold)
	local policy=/usr/sbin/policy-rc.d ours="" rc=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# temporary, from storefront scripts/%s: start no service\nexit 101\n' "$SCRIPT_NAME" >"$policy"
		chmod 755 "$policy"
		ours=1
	fi
	{
		"${apt[@]}" update && "${apt[@]}" install --no-install-recommends "$@"
	} >&2 || rc=$?
	if [ -n "$ours" ]; then rm -f "$policy"; fi
	return "$rc"
}

# may_install MISSING VAR PKG... dies unless this run may install the Debian packages PKG (it
# runs as root and has apt-get), saying that MISSING is missing and what to do instead:
# install PKG, or set the environment variable VAR (when not empty) to one there is.
may_install() {
	local missing=$1 var=$2
	shift 2
	is_root || die "$missing not found; install it (apt-get install $*)${var:+ or set $var}"
	command -v apt-get >/dev/null || die "$missing not found and apt-get is unavailable${var:+; set $var}"
}

# install_packages PKG... installs Debian packages (root only), or dies saying what is
# missing and why it cannot install it.
install_packages() {
	may_install "$*" "" "$@"
	note "installing $* from Debian's packages"
	apt_install "$@" || die "installing $* failed"
}

# package_bin VAR PATH LOCK PKG... prints the absolute path of the program that the environment
# variable VAR names, else of PATH, installing the Debian packages PKG (root only) when PATH is
# missing; one install at a time on this machine (flock on LOCK).
package_bin() {
	local var=$1 path=$2 lock=$3
	shift 3
	if [ -n "${!var:-}" ]; then
		[ -x "${!var}" ] || die "$var=${!var} is not an executable"
		realpath -- "${!var}"
		return
	fi
	if [ ! -x "$path" ]; then
		may_install "$path" "$var" "$@"
		(
			lock_file "$lock" 8 900
			if [ ! -x "$path" ]; then # else a concurrent run installed it meanwhile
				note "$path not found: installing $* from Debian's packages"
				apt_install "$@" || die "installing $* failed"
			fi
		)
		[ -x "$path" ] || die "$* installed but $path is not there"
	fi
	realpath -- "$path"
}
