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
