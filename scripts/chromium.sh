#!/usr/bin/env bash
# chromium.sh finds Debian's Chromium for the browser tests (web_e2e_test.go), installing
# the package when it is missing. Browsers downloaded by npm packages do not work on these
# machines; Debian's does.
#
# Usage:
#   scripts/chromium.sh bin    print the absolute path of chromium, installing it if missing
#
# The install (root only) is `apt-get install --no-install-recommends chromium
# fonts-liberation`: the fonts give the screenshots readable text. One install at a time on
# this machine. Environment: CHROMIUM_BIN names another Chromium or Chrome binary.
set -euo pipefail

readonly INSTALL_LOCK=/run/lock/storefront-chromium-install.lock

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# find_bin prints the absolute path of the browser, or fails.
find_bin() {
	local b
	for b in "${CHROMIUM_BIN:-}" /usr/bin/chromium; do
		if [ -n "$b" ] && [ -x "$b" ]; then
			realpath -- "$b"
			return
		fi
	done
	if [ -n "${CHROMIUM_BIN:-}" ]; then die "CHROMIUM_BIN=$CHROMIUM_BIN is not an executable"; fi
	return 1
}

install_chromium() {
	is_root || die "chromium not found; install it (apt-get install chromium) or set CHROMIUM_BIN"
	command -v apt-get >/dev/null || die "chromium not found and apt-get is unavailable; set CHROMIUM_BIN"
	mkdir -p "$(dirname "$INSTALL_LOCK")"
	exec 8>"$INSTALL_LOCK"
	flock -w 900 8 || die "timed out waiting for $INSTALL_LOCK"
	if find_bin >/dev/null; then # a concurrent run installed it meanwhile
		exec 8>&-
		return 0
	fi
	note "chromium not found: installing it from Debian's packages"
	local apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)
	local rc=0
	{
		DEBIAN_FRONTEND=noninteractive "${apt[@]}" update &&
			DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends chromium fonts-liberation
	} >&2 || rc=$?
	exec 8>&-
	[ "$rc" -eq 0 ] || die "installing chromium failed (exit $rc)"
}

case "${1:-}" in
bin)
	find_bin && exit 0
	install_chromium
	find_bin || die "chromium installed but not found at /usr/bin/chromium"
	;;
*) usage ;;
esac
