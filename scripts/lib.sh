# lib.sh holds what the scripts share (messages, usage, ports, locks, logs, processes,
# packages); pg.sh, redis.sh, search.sh, timescaledb.sh, tls.sh, haproxy.sh and chromium.sh
# source it first, and its messages carry the name of the script that sourced it.
# shellcheck shell=bash

readonly SCRIPT_NAME=${0##*/}

die() { echo "$SCRIPT_NAME: $*" >&2; exit 1; }
note() { echo "$SCRIPT_NAME: $*" >&2; }

# usage prints the script's "# Usage:" comment block and exits with $1 (default 2).
usage() {
	sed -n '/^# Usage:/,/^#$/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "${1:-2}"
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

# lock DIR [FD [SECONDS]] serialises start/stop/destroy on the server or cluster of DIR: an
# flock on the file .NAME.lock beside DIR, held on file descriptor FD (default 9) until
# unlock or the script's end, waiting at most SECONDS (default 600) for it.
lock() {
	local dir=$1 fd=${2:-9} wait=${3:-600} lockfile
	lockfile="$(dirname "$dir")/.$(basename "$dir").lock"
	mkdir -p "$(dirname "$dir")"
	eval "exec $fd>\"\$lockfile\""
	flock -w "$wait" "$fd" || die "timed out waiting for $lockfile"
}

# unlock releases the lock taken on file descriptor 9.
unlock() { exec 9>&-; }

# show_log FILE [LINES] prints the last LINES (default 30) of a server's log FILE to stderr,
# when there is one: what a failed start or wait shows.
show_log() {
	local file=$1 lines=${2:-30}
	if [ -f "$file" ]; then
		echo "--- last lines of $file ---" >&2
		tail -n "$lines" "$file" >&2 || true
	fi
}

# stop_pid DIR PID [GRACE] stops the process PID of DIR: SIGTERM (servers save and close on
# it), then SIGKILL when it has not exited within GRACE seconds (default 60). It fails if
# the process outlives both.
stop_pid() {
	local dir=$1 pid=$2 grace=${3:-60} _
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 $((grace * 10))); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	note "$dir (pid $pid) did not exit within $grace s: killing it"
	kill -KILL "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
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

# install_packages PKG... installs Debian packages (root only), or dies saying what is
# missing and why it cannot install it.
install_packages() {
	is_root || die "$* missing: install them (apt-get install $*)"
	command -v apt-get >/dev/null || die "$* missing and apt-get is unavailable"
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
		is_root || die "$path not found; install it (apt-get install $*) or set $var"
		command -v apt-get >/dev/null || die "$path not found and apt-get is unavailable; set $var"
		mkdir -p "$(dirname "$lock")"
		(
			flock -w 900 8 || die "timed out waiting for $lock"
			if [ ! -x "$path" ]; then # else a concurrent run installed it meanwhile
				note "$path not found: installing $* from Debian's packages"
				apt_install "$@" || die "installing $* failed"
			fi
		) 8>"$lock"
		[ -x "$path" ] || die "$* installed but $path is not there"
	fi
	realpath -- "$path"
}
