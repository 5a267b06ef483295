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

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd_bin() {
	[ $# -eq 0 ] || usage
	package_bin CHROMIUM_BIN /usr/bin/chromium /run/lock/storefront-chromium-install.lock chromium fonts-liberation
}

run_command "$@"
