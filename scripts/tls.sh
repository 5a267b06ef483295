#!/usr/bin/env bash
# tls.sh makes the TLS material of the private servers: a certificate authority of their own
# and a server certificate it signs for 127.0.0.1 and localhost, so that PostgreSQL (pg.sh
# turns TLS on with it), and the Redis and HAProxy that the fleet tests start, can be reached
# over TLS by clients that verify the server, as they would a managed service's.
#
# Usage:
#   scripts/tls.sh make DIR   make DIR/ca.pem, DIR/ca.key, DIR/server.crt, DIR/server.key and
#                             DIR/server.pem (certificate and key in one file, for HAProxy)
#                             unless DIR has them; ten years valid, P-256 keys
#
# Clients trust DIR/ca.pem only: `sslrootcert=DIR/ca.pem&sslmode=verify-full` for
# PostgreSQL, REDIS_CA_CERT and ELASTICSEARCH_CA_CERT for the server. The keys are readable
# by their owner only. openssl is installed from Debian's packages when missing (root only).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# cmd_make DIR writes the files into a fresh directory beside DIR and moves them in, so that
# a run interrupted halfway, or two at once, never leave a certificate without its key.
cmd_make() {
	[ $# -eq 1 ] || usage
	local dir=$1 openssl work
	[ -f "$dir/server.pem" ] && return 0
	openssl=$(package_bin OPENSSL_BIN /usr/bin/openssl /run/lock/storefront-openssl-install.lock openssl)
	mkdir -p "$dir"
	work=$(mktemp -d "$dir/.making.XXXXXX")
	(
		umask 077
		cd "$work"
		"$openssl" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
			-subj "/CN=storefront private CA" -keyout ca.key -out ca.pem
		"$openssl" req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-subj "/CN=localhost" -keyout server.key -out server.csr
		printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\n' >san.ext
		"$openssl" x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile san.ext -out server.crt
		cat server.crt server.key >server.pem
		chmod 644 ca.pem server.crt
	) >/dev/null 2>"$work/openssl.log" || {
		cat "$work/openssl.log" >&2
		rm -rf "$work"
		die "openssl failed making the TLS files of $dir"
	}
	mv -f "$work"/ca.pem "$work"/ca.key "$work"/server.crt "$work"/server.key "$dir"/
	mv -f "$work"/server.pem "$dir"/ # last: its presence says the set is whole
	rm -rf "$work"
	note "made a private certificate authority and a server certificate in $dir"
}

run_command "$@"
