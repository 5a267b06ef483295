#!/usr/bin/env bash
# timescaledb.sh installs the TimescaleDB extension for the PostgreSQL server that scripts/pg.sh
# runs, once per machine.
#
# Usage:
#   scripts/timescaledb.sh ensure BINDIR   install TimescaleDB for the server in BINDIR unless it
#                                          is installed; exit 0 when it is, 1 (after one line
#                                          saying why) when it cannot be
#   scripts/timescaledb.sh status BINDIR   say whether it is installed (exit 0) or not (exit 1)
#
# `ensure` tries, in order:
#   1. nothing to do: timescaledb.control and timescaledb.so are in the server's directories;
#   2. the distribution's package (timescaledb-2-postgresql-MAJOR from Timescale's package
#      repository, else postgresql-MAJOR-timescaledb), when apt knows one;
#   3. a build from the source tarball TIMESCALEDB_SOURCE (default: the first of
#      ../shared/vendor/timescaledb-2.28.3.tar.gz beside the repository and
#      /work/shared/vendor/timescaledb-2.28.3.tar.gz that exists), after checking its sha256
#      (TIMESCALEDB_SHA256; the default tarball's is known), with Debian's cmake and
#      postgresql-server-dev-MAJOR, installed first;
# and otherwise says why not in one line: the caller then runs plain PostgreSQL.
# Installing needs root. One install at a time on this machine (a lock in /run/lock): test
# runs of several checkouts may call it at once, and the later ones find it installed.
#
# Installing postgresql-server-dev-MAJOR may upgrade the server package in place; a cluster
# that was already running on the old binaries then fails to load libraries until restarted.
# scripts/pg.sh calls `ensure` before it starts a cluster, and restarts a running cluster whose
# binaries changed.
#
# Environment: TIMESCALEDB_SOURCE, TIMESCALEDB_SHA256 as above; TIMESCALEDB_INSTALL=0 skips
# steps 2 and 3 (use what is installed, install nothing); TIMESCALEDB_REBUILD=1 builds from the
# tarball even when TimescaleDB is installed. The build is patched for Debian 12's PostgreSQL
# (see patch_job_portal).
set -euo pipefail
umask 022

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
readonly REPO_ROOT
readonly TARBALL=timescaledb-2.28.3.tar.gz
readonly TARBALL_SHA256=ec2f7de0ba53a473c01e0a57e09053898c6b1f7487228caff0f1d31c8cb2dedb
readonly INSTALL_LOCK=/run/lock/storefront-timescaledb-install.lock
# A build made here leaves this stamp beside the control file; a build whose stamp differs
# from BUILD_ID (made by an older version of this script) is built again.
readonly STAMP=timescaledb.storefront-build
readonly BUILD_ID="storefront build 2: job portal fix"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# major BINDIR prints the server's major version (15).
major() { "$1/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/'; }

# dirs BINDIR sets SHAREDIR and LIBDIR, the directories the server loads extensions from:
# pg_config's when it is there, else Debian's layout.
dirs() {
	local bin=$1 m
	if [ -x "$bin/pg_config" ]; then
		SHAREDIR=$("$bin/pg_config" --sharedir)
		LIBDIR=$("$bin/pg_config" --pkglibdir)
	else
		m=$(major "$bin")
		SHAREDIR=/usr/share/postgresql/$m
		LIBDIR=/usr/lib/postgresql/$m/lib
	fi
}

# installed BINDIR succeeds when TimescaleDB is installed for the server in BINDIR: from a
# package, or built here as this version of the script builds it (its stamp says how).
installed() {
	dirs "$1"
	[ -f "$SHAREDIR/extension/timescaledb.control" ] && [ -f "$LIBDIR/timescaledb.so" ] || return 1
	[ ! -f "$SHAREDIR/extension/$STAMP" ] || [ "$(cat "$SHAREDIR/extension/$STAMP")" = "$BUILD_ID" ]
}

# package_name MAJOR prints the distribution's TimescaleDB package for MAJOR, if apt knows one.
package_name() {
	local m=$1 p
	command -v apt-cache >/dev/null || return 1
	for p in "timescaledb-2-postgresql-$m" "postgresql-$m-timescaledb"; do
		if apt-cache show "$p" >/dev/null 2>&1; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# source_tarball prints the tarball to build from, or fails.
source_tarball() {
	if [ -n "${TIMESCALEDB_SOURCE:-}" ]; then
		echo "$TIMESCALEDB_SOURCE"
		return 0
	fi
	local t
	for t in "$REPO_ROOT/../shared/vendor/$TARBALL" "/work/shared/vendor/$TARBALL"; do
		if [ -f "$t" ]; then
			realpath -- "$t"
			return 0
		fi
	done
	return 1
}

# build TARBALL BINDIR builds and installs TimescaleDB from TARBALL for the server in BINDIR.
build() {
	local tarball=$1 bin=$2 m want got work log rc=0
	m=$(major "$bin")
	want=${TIMESCALEDB_SHA256:-}
	if [ -z "$want" ] && [ -z "${TIMESCALEDB_SOURCE:-}" ]; then want=$TARBALL_SHA256; fi
	if [ -n "$want" ]; then
		got=$(sha256sum -- "$tarball" | cut -d' ' -f1)
		if [ "$got" != "$want" ]; then
			note "$tarball has sha256 $got, not $want: not building it"
			return 1
		fi
	fi
	note "building TimescaleDB from $tarball for PostgreSQL $m (once per machine; about a minute on 2 cores)"
	apt_install cmake make gcc "postgresql-server-dev-$m" || {
		note "installing cmake and postgresql-server-dev-$m failed"
		return 1
	}
	work=$(mktemp -d "${TMPDIR:-/tmp}/storefront-timescaledb-build.XXXXXX")
	log=$work/build.log
	tar -xzf "$tarball" -C "$work" --strip-components=1 || {
		note "could not unpack $tarball"
		rm -rf -- "$work"
		return 1
	}
	patch_job_portal "$work" || {
		rm -rf -- "$work"
		return 1
	}
	# The server-dev package put pg_config beside the server: build against that server.
	(
		cd "$work" &&
			PATH="$bin:$PATH" ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
				-DLINTER=OFF -DENABLE_CODECOVERAGE=OFF -DUSE_TELEMETRY=OFF -DCMAKE_BUILD_TYPE=Release \
				-DPG_CONFIG="$bin/pg_config" &&
			make -C build -j "$(nproc)" &&
			make -C build install
	) >"$log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		show_log "$log"
		rm -rf -- "$work"
		note "building TimescaleDB from $tarball failed (exit $rc)"
		return 1
	fi
	rm -rf -- "$work"
	echo "$BUILD_ID" >"$SHAREDIR/extension/$STAMP"
}

# patch_job_portal SRCDIR fixes TimescaleDB 2.28.3's job runner for the PostgreSQL 15 of Debian 12
# (15.20): every job the scheduler ran failed at its end with "cannot drop portal "" while it is
# being set up", as that PostgreSQL refuses to drop a portal still in its initial state, which
# the runner's own portal never leaves (run_job from a session uses the session's portal and was
# not affected). The patch marks the portal done, the state of a finished portal, before
# dropping it. Sources without that code are left alone.
patch_job_portal() {
	local file=$1/tsl/src/bgw_policy/job.c
	grep -q '^		PortalDrop(portal, false);$' "$file" 2>/dev/null || return 0
	sed -i 's/^\t\tPortalDrop(portal, false);$/\t\tportal->status = PORTAL_DONE;\n\t\tPortalDrop(portal, false);/' "$file"
	grep -q 'portal->status = PORTAL_DONE;' "$file" || {
		note "could not patch $file"
		return 1
	}
}

# wanted BINDIR succeeds when TimescaleDB is installed for the server in BINDIR and
# TIMESCALEDB_REBUILD does not ask to build it again.
wanted() { [ "${TIMESCALEDB_REBUILD:-0}" != 1 ] && installed "$1"; }

cmd_ensure() {
	[ $# -eq 1 ] || usage
	local bin=$1 m
	[ -x "$bin/postgres" ] || die "$bin holds no postgres binary"
	if wanted "$bin"; then return 0; fi
	m=$(major "$bin")
	if [ "${TIMESCALEDB_INSTALL:-1}" = 0 ]; then
		note "TimescaleDB is not installed for PostgreSQL $m and TIMESCALEDB_INSTALL=0: plain PostgreSQL analytics"
		return 1
	fi
	if ! is_root; then
		note "TimescaleDB is not installed for PostgreSQL $m and installing it needs root: plain PostgreSQL analytics"
		return 1
	fi
	# Held until the script ends, right after the install.
	lock_file "$INSTALL_LOCK" 7 1200
	if wanted "$bin"; then return 0; fi # a concurrent run installed it meanwhile
	install_timescaledb "$bin" "$m"
}

# install_timescaledb BINDIR MAJOR installs TimescaleDB for the server in BINDIR: the distribution's
# package, else a build from the source tarball.
install_timescaledb() {
	local bin=$1 m=$2 pkg tarball
	if [ "${TIMESCALEDB_REBUILD:-0}" != 1 ] && pkg=$(package_name "$m"); then
		note "installing TimescaleDB from the distribution's package $pkg"
		if apt_install "$pkg" && installed "$bin"; then return 0; fi
		note "installing $pkg failed: trying the source tarball"
	fi
	if ! tarball=$(source_tarball); then
		note "TimescaleDB is not installed, no package offers it and no source tarball was found" \
			"(set TIMESCALEDB_SOURCE to $TARBALL): plain PostgreSQL analytics"
		return 1
	fi
	if [ ! -f "$tarball" ]; then
		note "TIMESCALEDB_SOURCE=$tarball does not exist: plain PostgreSQL analytics"
		return 1
	fi
	if ! build "$tarball" "$bin" || ! installed "$bin"; then
		note "TimescaleDB could not be installed (see above): plain PostgreSQL analytics"
		return 1
	fi
	note "TimescaleDB installed into $LIBDIR"
}

cmd_status() {
	[ $# -eq 1 ] || usage
	if installed "$1"; then
		echo "installed: $SHAREDIR/extension/timescaledb.control"
	else
		echo "not installed for $1"
		return 1
	fi
}

run_command "$@"
