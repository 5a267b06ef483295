#!/usr/bin/env bash
# haproxy.sh finds Debian's HAProxy for the fleet tests (make test-fleet), which put three API
# instances behind it, installing the package when it is missing.
#
# Usage:
#   scripts/haproxy.sh bin    print the absolute path of haproxy, installing it if missing
#
# The install (root only) is `apt-get install --no-install-recommends haproxy`, with service
# start-up disabled: the tests run their own HAProxy processes, never the system service.
# Environment: HAPROXY_BIN names another haproxy.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd_bin() {
	[ $# -eq 0 ] || usage
	package_bin HAPROXY_BIN /usr/sbin/haproxy /run/lock/storefront-haproxy-install.lock haproxy
}

run_command "$@"
