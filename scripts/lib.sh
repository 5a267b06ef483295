# lib.sh holds what the service scripts (pg.sh, redis.sh) share; they source it first, and
# its messages carry the name of the script that sourced it.
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
