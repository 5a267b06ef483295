#!/usr/bin/env bash
# pg.sh runs private PostgreSQL clusters for development, tests and benchmarks.
#
# Usage:
#   scripts/pg.sh start DIR PORT [durable|fast]  init (if needed) and start the cluster in DIR
#   scripts/pg.sh replica DIR PORT PRIMARY_PORT [durable|fast]
#                                                start in DIR a streaming read replica of the
#                                                cluster on PRIMARY_PORT (a base backup the
#                                                first time: pg_basebackup -R)
#   scripts/pg.sh stop DIR                       stop the cluster in DIR (fine when not running)
#   scripts/pg.sh url PORT [DBNAME]              print the superuser URL (DBNAME: storefront)
#   scripts/pg.sh createdb PORT DBNAME           create database DBNAME unless it exists
#   scripts/pg.sh status DIR                     say whether the cluster in DIR runs
#   scripts/pg.sh datadir DIR                    print where the cluster of DIR really lives
#   scripts/pg.sh ca DIR                         print the file of the authority that signed the
#                                                cluster's TLS certificate
#   scripts/pg.sh destroy DIR                    stop the cluster and delete its data
#
# A cluster listens on 127.0.0.1:PORT only, trusts every loopback connection (it is a private
# dev cluster: never expose it) and has one superuser, `storefront`. `fast` mode turns off
# fsync, synchronous_commit and full_page_writes: an OS crash may corrupt it, which is fine
# for throwaway test and bench data; `durable` (the default) keeps PostgreSQL's safe defaults.
#
# Every cluster also accepts TLS, with a certificate for 127.0.0.1 and localhost signed by an
# authority of its own (scripts/tls.sh, in DIR/tls): a client that verifies the server, as it
# would a managed service, connects with `sslmode=verify-full&sslrootcert=$(scripts/pg.sh ca DIR)`;
# connections without TLS (`sslmode=disable`) are accepted as before.
#
# Every cluster preloads TimescaleDB, which `start` installs first when it is missing
# (scripts/timescaledb.sh: the distribution's package, else a build from a source tarball);
# when it cannot, the cluster runs without it and the databases get plain-PostgreSQL analytics.
# Installing it may upgrade the server's binaries in place: `start` restarts a running cluster
# whose binaries changed.
#
# Nothing here touches the system's PostgreSQL service: no systemctl, service or
# pg_ctlcluster. If the server binaries are missing they are installed from Debian's packages
# (root only), with service start-up and the package's own "main" cluster disabled.
#
# PostgreSQL refuses to run as root, so when run as root the server runs as the unprivileged
# user $PG_OS_USER (default `postgres`, created if missing) and DIR is owned by that user.
# That user must be able to traverse every directory above DIR; when it cannot (say the repo
# was cloned under /root, mode 0700), the cluster lives in
# /tmp/storefront-<hash of the repo path>/<DIR relative to the repo> instead, and a README in
# DIR says so. `scripts/pg.sh datadir DIR` prints the directory really used.
#
# Environment: PG_BIN (directory holding initdb, pg_ctl, postgres, psql) overrides the
# search in /usr/lib/postgresql; PG_OS_USER overrides the server's OS user when run as root.
set -euo pipefail
umask 022

readonly PG_SUPERUSER=storefront
readonly PREFERRED_MAJOR=15
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
readonly REPO_ROOT
PG_OS_USER="${PG_OS_USER:-postgres}"

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# has_bins DIR succeeds when DIR holds every program we use.
has_bins() {
	local d=$1 p
	for p in initdb pg_ctl postgres psql; do
		[ -x "$d/$p" ] || return 1
	done
}

# find_bin_dir prints a bin directory with the server and client programs, preferring the
# major version given as $1 (the version of an existing cluster), then 15, then the newest.
find_bin_dir() {
	local want=${1:-} v
	if [ -n "${PG_BIN:-}" ]; then
		has_bins "$PG_BIN" || die "PG_BIN=$PG_BIN lacks initdb, pg_ctl, postgres or psql"
		echo "$PG_BIN"
		return
	fi
	# shellcheck disable=SC2012 # version directories have plain numeric names
	for v in $want $PREFERRED_MAJOR $(ls -1 /usr/lib/postgresql 2>/dev/null | sort -rn); do
		if has_bins "/usr/lib/postgresql/$v/bin"; then
			echo "/usr/lib/postgresql/$v/bin"
			return
		fi
	done
	return 1
}

# install_postgres installs the PostgreSQL server from Debian's packages without letting the
# package start its service or create its default cluster.
install_postgres() {
	may_install "PostgreSQL server binaries" PG_BIN postgresql
	note "PostgreSQL server binaries not found: installing them from Debian's packages"
	# postgresql-common first, so its createcluster.conf can say not to create the system's
	# "main" cluster when the server package is configured.
	local rc=0
	{
		apt_install postgresql-common &&
			disable_main_cluster &&
			apt_install "$(server_package)"
	} || rc=$?
	[ "$rc" -eq 0 ] || die "installing PostgreSQL failed (exit $rc)"
}

# disable_main_cluster tells postgresql-common not to create the system's "main" cluster.
disable_main_cluster() {
	local conf=/etc/postgresql-common/createcluster.conf
	if [ -f "$conf" ] && ! grep -Eq '^[[:space:]]*create_main_cluster' "$conf"; then
		printf '\n# added by storefront scripts/pg.sh: private clusters only\ncreate_main_cluster = false\n' >>"$conf"
	fi
}

# server_package prints postgresql-15 when the distribution has it, else postgresql.
server_package() {
	if apt-cache show "postgresql-$PREFERRED_MAJOR" >/dev/null 2>&1; then
		echo "postgresql-$PREFERRED_MAJOR"
	else
		echo postgresql
	fi
}

# bin_dir prints the bin directory, installing PostgreSQL when it is missing.
bin_dir() {
	find_bin_dir && return
	install_postgres
	find_bin_dir || die "PostgreSQL installed but no bin directory found under /usr/lib/postgresql"
}

# ensure_os_user makes sure the unprivileged user that runs the server exists (root only).
ensure_os_user() {
	is_root || return 0
	id -u "$PG_OS_USER" >/dev/null 2>&1 && return
	note "creating system user $PG_OS_USER to run PostgreSQL"
	useradd --system --user-group --home-dir /var/lib/postgresql --no-create-home \
		--shell /usr/sbin/nologin "$PG_OS_USER"
}

# as_pg runs a command as the server's OS user (as ourselves when not root), from /, without
# the lock's file descriptor (the postmaster must not inherit it).
as_pg() {
	if is_root; then
		(cd / && runuser -u "$PG_OS_USER" -- "$@" 9>&-)
	else
		(cd / && "$@" 9>&-)
	fi
}

hash_of() { printf '%s' "$1" | sha256sum | cut -c1-12; }

# data_dir DIR prints the directory that really holds the cluster of DIR: DIR itself, or the
# /tmp fallback when the server's OS user cannot traverse the directories above DIR.
# It creates neither.
data_dir() {
	local dir parent probe
	dir=$(abs_path "$1")
	if ! is_root || ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
		echo "$dir"
		return
	fi
	# Probe the nearest existing ancestor: every directory we create below it gets mode 755.
	parent=$(dirname "$dir")
	probe=$parent
	while [ ! -d "$probe" ]; do probe=$(dirname "$probe"); done
	if as_pg test -x "$probe" 2>/dev/null; then
		echo "$dir"
		return
	fi
	local rel
	case "$dir" in
	"$REPO_ROOT"/*) rel=${dir#"$REPO_ROOT"/} ;;
	*) rel="ext-$(hash_of "$dir")" ;;
	esac
	rel=${rel//\//_}
	echo "/tmp/storefront-$(hash_of "$REPO_ROOT")/${rel#.}"
}

# prepare_dir DIR creates the data directory for the cluster of DIR, owned by the server's OS
# user with mode 0700, and prints it.
prepare_dir() {
	local dir data
	dir=$(abs_path "$1")
	data=$(data_dir "$dir")
	if [ "$data" != "$dir" ]; then
		mkdir -p "$dir" "$(dirname "$data")"
		chmod 755 "$(dirname "$data")"
		cat >"$dir/README" <<-EOF
			$PG_OS_USER cannot traverse the directories above $dir,
			so scripts/pg.sh keeps this cluster in $data instead.
		EOF
		note "$PG_OS_USER cannot reach $dir; using $data instead"
	else
		mkdir -p "$(dirname "$data")"
	fi
	if [ ! -d "$data" ]; then
		mkdir -m 700 "$data"
	fi
	if is_root; then
		chown "$PG_OS_USER": "$data"
	fi
	chmod 700 "$data"
	echo "$data"
}

is_running() { # DATA BIN
	[ -f "$1/PG_VERSION" ] || return 1
	as_pg "$2/pg_ctl" status -D "$1" >/dev/null 2>&1
}

# render_conf PORT MODE DATA TIMESCALEDB prints the settings pg.sh owns. TIMESCALEDB=1 preloads
# TimescaleDB, with room for its background workers: a scheduler per database that has the
# extension (tests create many) and the jobs they run.
render_conf() {
	local port=$1 mode=$2 data=$3 timescaledb=$4 sockdir onoff
	sockdir=$data
	# A Unix socket path may hold at most 107 bytes.
	if [ $(( ${#data} + ${#port} + 10 )) -gt 107 ]; then sockdir=""; fi
	if [ "$mode" = fast ]; then onoff=off; else onoff=on; fi
	cat <<-EOF
		# Written by scripts/pg.sh at every start ($mode mode); edits here are overwritten.
		listen_addresses = '127.0.0.1'
		port = $port
		unix_socket_directories = '$sockdir'
		max_connections = 300
		ssl = on
		ssl_cert_file = 'tls/server.crt'
		ssl_key_file = 'tls/server.key'
		shared_buffers = 256MB
		fsync = $onoff
		synchronous_commit = $onoff
		full_page_writes = $onoff
	EOF
	if [ "$timescaledb" = 1 ]; then
		cat <<-EOF
			shared_preload_libraries = 'timescaledb'
			max_worker_processes = 96
			timescaledb.max_background_workers = 80
		EOF
	fi
}

# ensure_tls DATA gives the cluster in DATA its TLS files in DATA/tls, owned by the server's
# user: PostgreSQL refuses a key that others can read. A replica has them from its base backup.
ensure_tls() {
	local tls=$1/tls
	[ -f "$tls/server.pem" ] && return 0
	"$(dirname "${BASH_SOURCE[0]}")/tls.sh" make "$tls" 9>&-
	if is_root; then chown -R "$PG_OS_USER:" "$tls"; fi
}

# timescaledb BIN installs TimescaleDB for the server in BIN unless it is (scripts/timescaledb.sh)
# and prints 1 when the cluster can preload it, else 0 (the script said why).
timescaledb() {
	if "$(dirname "${BASH_SOURCE[0]}")/timescaledb.sh" ensure "$1"; then echo 1; else echo 0; fi
}

# binaries_replaced DATA succeeds when the running postmaster of DATA runs a binary that was
# replaced on disk since it started (a package upgrade): it can no longer load libraries.
binaries_replaced() {
	local pid
	pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || return 1
	case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
	*" (deleted)") return 0 ;;
	esac
	return 1
}

# stop_cluster BIN DATA stops the cluster in DATA: a fast shutdown, else an immediate one.
stop_cluster() {
	as_pg "$1/pg_ctl" stop -D "$2" -m fast -w -t 120 >/dev/null && return 0
	note "fast shutdown did not finish; shutting down immediately"
	as_pg "$1/pg_ctl" stop -D "$2" -m immediate -w -t 60 >/dev/null
}

# answers BIN PORT succeeds when the server on PORT answers a query as the superuser.
answers() {
	PGCONNECT_TIMEOUT=2 "$1/psql" -X -q -At -d "$(url "$2" postgres)" -c 'SELECT 1' >/dev/null 2>&1
}

# wait_ready BIN PORT DATA waits until the server on PORT answers (2 minutes at most); it gives
# up early (status 2) when the postmaster of the cluster in DATA exits.
wait_ready() {
	local pid
	pid=$(head -n 1 "$3/postmaster.pid" 2>/dev/null) || return 2
	WAIT_PID=$pid wait_until 120 0.5 answers "$1" "$2"
}

cmd_start() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
	local dir=$1 port=$2 mode=${3:-durable} bin data version want_conf
	check_port "$port"
	case "$mode" in durable | fast) ;; *) die "mode must be durable or fast, got '$mode'" ;; esac

	bin=$(bin_dir)
	ensure_os_user
	data=$(prepare_dir "$dir")
	lock "$data"

	if [ -f "$data/PG_VERSION" ]; then
		version=$(cat "$data/PG_VERSION")
		bin=$(find_bin_dir "$version") || die "no PostgreSQL bin directory found"
		[ -x "/usr/lib/postgresql/$version/bin/postgres" ] || [ -n "${PG_BIN:-}" ] ||
			die "$data holds a PostgreSQL $version cluster but PostgreSQL $version is not installed; remove $data to start afresh"
	else
		if [ -n "$(ls -A "$data")" ]; then
			die "$data is neither empty nor a PostgreSQL cluster; remove it to start afresh"
		fi
		local locale=C.UTF-8 initflags=()
		locale -a 2>/dev/null | grep -qix 'c\.utf-\{0,1\}8' || locale=C
		if [ "$mode" = fast ]; then initflags+=(--no-sync); fi
		note "initialising a cluster in $data"
		as_pg "$bin/initdb" -D "$data" -U "$PG_SUPERUSER" --auth=trust --encoding=UTF8 \
			--locale="$locale" --no-instructions "${initflags[@]}" >"$data.initdb.log" 2>&1 || {
			cat "$data.initdb.log" >&2
			die "initdb failed"
		}
		rm -f "$data.initdb.log"
		# Only loopback connections exist (listen_addresses), and all of them are trusted.
		as_pg tee "$data/pg_hba.conf" >/dev/null <<-EOF
			# Written by scripts/pg.sh: a private dev cluster that trusts loopback connections.
			# TYPE  DATABASE     USER  ADDRESS       METHOD
			local   all          all                 trust
			host    all          all   127.0.0.1/32  trust
			host    all          all   ::1/128       trust
			local   replication  all                 trust
			host    replication  all   127.0.0.1/32  trust
		EOF
		printf "\n# Settings managed by scripts/pg.sh\ninclude_if_exists = 'storefront.conf'\n" |
			as_pg tee -a "$data/postgresql.conf" >/dev/null
	fi

	ensure_tls "$data"
	# Before any start: installing TimescaleDB may upgrade the server's binaries in place.
	want_conf=$(render_conf "$port" "$mode" "$data" "$(timescaledb "$bin")")
	if is_running "$data" "$bin" && binaries_replaced "$data"; then
		note "the server binaries changed since $data started (a package upgrade): restarting it"
		stop_cluster "$bin" "$data" || die "could not stop $data to restart it on the new binaries"
	fi
	if is_running "$data" "$bin"; then
		if [ "$(cat "$data/storefront.conf" 2>/dev/null)" != "$want_conf" ]; then
			note "settings changed: restarting $data"
			stop_cluster "$bin" "$data" || die "could not stop $data to apply new settings"
		elif reuse "$data on 127.0.0.1:$port ($mode)" "$data/log" "scripts/pg.sh stop $dir" \
			wait_ready "$bin" "$port" "$data"; then
			return 0
		fi
	fi

	claim_port "$port"

	printf '%s\n' "$want_conf" | as_pg tee "$data/storefront.conf" >/dev/null
	note "starting $data on 127.0.0.1:$port ($mode)"
	if ! as_pg "$bin/pg_ctl" start -D "$data" -l "$data/log" -w -t 300 >/dev/null; then
		show_log "$data/log"
		die "pg_ctl start failed for $data"
	fi
	if ! wait_ready "$bin" "$port" "$data"; then
		show_log "$data/log"
		die "cluster in $data started but does not accept connections on port $port"
	fi
	note "ready: $(url "$port" postgres)"
}

# cmd_replica DIR PORT PRIMARY_PORT [MODE] takes a base backup of the cluster on PRIMARY_PORT
# into DIR unless DIR holds one, then starts it: with -R the backup carries standby.signal and
# the primary's address, so it starts as a hot standby streaming from the primary (whose
# pg_hba.conf trusts loopback replication connections). Its settings are its own (port). The
# replica streams through a physical replication slot named after DIR, so that the primary
# keeps the WAL a stopped replica has yet to replay; a fresh backup replaces the slot.
cmd_replica() {
	if [ $# -lt 3 ] || [ $# -gt 4 ]; then usage; fi
	local dir=$1 port=$2 primary=$3 mode=${4:-durable} bin data
	check_port "$port"
	check_port "$primary"
	bin=$(bin_dir)
	ensure_os_user
	data=$(prepare_dir "$dir")
	lock "$data"
	if [ ! -f "$data/PG_VERSION" ]; then
		[ -z "$(ls -A "$data")" ] || die "$data is neither empty nor a PostgreSQL cluster; remove it to start afresh"
		local slot
		slot="replica_$(hash_of "$(abs_path "$dir")")"
		"$bin/psql" -X -q -At -d "$(url "$primary" postgres)" -v slot="$slot" >/dev/null <<-'EOF' ||
			SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = :'slot';
		EOF
			die "the primary on port $primary does not answer"
		note "taking a base backup of 127.0.0.1:$primary into $data (slot $slot)"
		as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary" -U "$PG_SUPERUSER" -D "$data" \
			-R -C -S "$slot" -X stream -c fast 2>&1 | grep -v 'skipping special file' >&2 ||
			true
		[ -f "$data/standby.signal" ] || { rm -rf -- "${data:?}"/*; die "pg_basebackup from port $primary failed"; }
	fi
	[ -f "$data/standby.signal" ] || die "$data holds a cluster that is no replica"
	unlock
	cmd_start "$dir" "$port" "$mode"
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir=$1 data bin
	data=$(data_dir "$dir")
	if [ ! -f "$data/PG_VERSION" ]; then
		note "no cluster in $data: nothing to stop"
		return 0
	fi
	bin=$(find_bin_dir "$(cat "$data/PG_VERSION")") || die "no PostgreSQL bin directory found"
	lock "$data"
	if ! is_running "$data" "$bin"; then
		note "not running: $data"
		return 0
	fi
	stop_cluster "$bin" "$data" || die "could not stop the cluster in $data"
	note "stopped: $data"
}

cmd_status() {
	[ $# -eq 1 ] || usage
	local data bin
	data=$(data_dir "$1")
	if [ -f "$data/PG_VERSION" ] && bin=$(find_bin_dir "$(cat "$data/PG_VERSION")") &&
		is_running "$data" "$bin"; then
		echo "running: $data"
	else
		echo "not running: $data"
		return 3
	fi
}

# release_slot DATA drops the replication slot through which the replica in DATA streams
# from its primary (when the primary runs), so that the primary keeps no WAL for it.
release_slot() {
	local data=$1 slot port
	slot=$(sed -n "s/^primary_slot_name = '\(.*\)'$/\1/p" "$data/postgresql.auto.conf" 2>/dev/null)
	port=$(sed -n "s/^primary_conninfo = .* port=\([0-9]*\) .*/\1/p" "$data/postgresql.auto.conf" 2>/dev/null)
	[ -n "$slot" ] && [ -n "$port" ] || return 0
	# The primary's walsender ends a moment after the replica stops.
	wait_until 10 0.2 drop_slot "$(bin_dir)" "$port" "$slot" || note "could not drop replication slot $slot on port $port"
}

# drop_slot BIN PORT SLOT drops the inactive replication slot SLOT of the server on PORT and
# succeeds once there is no such slot.
drop_slot() {
	"$1/psql" -X -q -At -d "$(url "$2" postgres)" -v slot="$3" >/dev/null 2>&1 <<-'EOF'
		SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = :'slot' AND NOT active;
		SELECT 1/(NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = :'slot'))::int;
	EOF
}

cmd_destroy() {
	[ $# -eq 1 ] || usage
	local dir data
	dir=$(abs_path "$1")
	data=$(data_dir "$dir")
	cmd_stop "$dir"
	if [ -f "$data/standby.signal" ]; then release_slot "$data"; fi
	remove_dir "$data"
	if [ "$data" != "$dir" ]; then
		rm -rf -- "$dir"
		rmdir -- "$(dirname "$data")" 2>/dev/null || true
	fi
}

url() {
	local port=$1 db=${2:-storefront}
	echo "postgres://$PG_SUPERUSER@127.0.0.1:$port/$db?sslmode=disable"
}

cmd_url() {
	if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
	check_port "$1"
	url "$@"
}

cmd_createdb() {
	[ $# -eq 2 ] || usage
	local port=$1 db=$2
	check_port "$port"
	[ -n "$db" ] || die "DBNAME is empty"
	# A concurrent createdb may win the race: then the next try finds the database.
	wait_until 3 1 create_db "$(bin_dir)" "$port" "$db" || die "could not create database $db on port $port"
}

# create_db BIN PORT DBNAME creates database DBNAME on PORT unless it exists.
create_db() {
	"$1/psql" -X -q -v ON_ERROR_STOP=1 -v db="$3" -d "$(url "$2" postgres)" >/dev/null <<-'EOF'
		SELECT format('CREATE DATABASE %I', :'db')
		WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
	EOF
}

cmd_datadir() {
	[ $# -eq 1 ] || usage
	data_dir "$1"
}

cmd_ca() {
	[ $# -eq 1 ] || usage
	echo "$(data_dir "$1")/tls/ca.pem"
}

run_command "$@"
