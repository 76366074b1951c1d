#!/usr/bin/env bash
# Install the TimescaleDB extension into this machine's PostgreSQL from Debian 13 (trixie)'s
# *source* package, built against the local PostgreSQL's headers.
#
# Why a source build: Debian 12 (bookworm) has no TimescaleDB package, and trixie's binary
# package needs a newer libc. The source package builds against PostgreSQL 15 in seconds.
#
# What it does (each step only when needed, so a second run is quick):
#   1. add a deb-src line for trixie, derived from the machine's own apt sources (same mirror),
#      and pin trixie down so that it can never upgrade or install a binary package;
#   2. apt-get install cmake, postgresql-server-dev-$PG_MAJOR and the build tools;
#   3. apt-get source timescaledb, build it Apache-only (as Debian does) and install it;
#   4. set shared_preload_libraries = 'timescaledb' in conf.d and restart PostgreSQL, only when
#      that setting actually changes;
#   5. create the database $TIMESCALE_DB with the extension.
#
# Environment: PG_MAJOR (default 15), PG_CLUSTER (main), TIMESCALE_DB (test_timescale),
# TIMESCALE_SUITE (trixie), TIMESCALE_BUILD_DIR (/var/cache/forewarn/timescaledb).
# Runs as root, non-interactively. Exits non-zero with a message saying why when it cannot.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
DB="${TIMESCALE_DB:-test_timescale}"
SUITE="${TIMESCALE_SUITE:-trixie}"
BUILD_ROOT="${TIMESCALE_BUILD_DIR:-/var/cache/forewarn/timescaledb}"
SRC_LIST=/etc/apt/sources.list.d/forewarn-${SUITE}-src.sources
PIN_FILE=/etc/apt/preferences.d/forewarn-${SUITE}
CONF_FILE=/etc/postgresql/${PG_MAJOR}/${PG_CLUSTER}/conf.d/50-forewarn-timescaledb.conf
PG_CONFIG=/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confold)

START=$(date +%s)
log() { printf 'timescaledb [+%ss]: %s\n' "$(($(date +%s) - START))" "$*"; }
die() {
    printf 'timescaledb: FAILED: %s\n' "$*" >&2
    exit 1
}
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR
APT_LOG=/tmp/forewarn-timescaledb-apt.log
# apt with its output in $APT_LOG, three tries (a mirror can hiccup); the log's tail on failure.
apt_run() {
    local try
    for try in 1 2 3; do
        if apt-get "${APT_OPTS[@]}" "$@" >>"$APT_LOG" 2>&1; then return 0; fi
        [ "$try" = 3 ] || { log "apt-get $* failed (try $try), retrying in 5 s"; sleep 5; }
    done
    tail -n 20 "$APT_LOG" >&2
    return 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and restarts PostgreSQL)"
command -v pg_ctlcluster >/dev/null || die "pg_ctlcluster not found: is PostgreSQL installed from Debian's packages?"
[ -d "/etc/postgresql/${PG_MAJOR}/${PG_CLUSTER}" ] || die "no PostgreSQL ${PG_MAJOR} cluster '${PG_CLUSTER}' on this machine"

# psql as the postgres superuser over the cluster's socket; works whatever the auth method.
PG_PORT=$(awk -F= '/^[[:space:]]*port[[:space:]]*=/{gsub(/[^0-9]/,"",$2); p=$2} END{print p}' \
    "/etc/postgresql/${PG_MAJOR}/${PG_CLUSTER}/postgresql.conf" "/etc/postgresql/${PG_MAJOR}/${PG_CLUSTER}"/conf.d/*.conf 2>/dev/null)
PG_PORT="${PG_PORT:-5432}"
psql_pg() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -At "$@"; }

cluster_online() { pg_lsclusters -h "$PG_MAJOR" "$PG_CLUSTER" 2>/dev/null | awk '{print $4}' | grep -q '^online$'; }

ensure_running() {
    if ! cluster_online; then
        log "PostgreSQL ${PG_MAJOR}/${PG_CLUSTER} is not running: starting it"
        pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$PG_CLUSTER" start ||
            die "could not start PostgreSQL ${PG_MAJOR}/${PG_CLUSTER} (see /var/log/postgresql/postgresql-${PG_MAJOR}-${PG_CLUSTER}.log)"
    fi
}

# --- what is there already -------------------------------------------------------------------
pkglibdir() { "$PG_CONFIG" --pkglibdir; }
sharedir() { "$PG_CONFIG" --sharedir; }
extension_installed() {
    [ -x "$PG_CONFIG" ] && [ -f "$(pkglibdir)/timescaledb.so" ] && [ -f "$(sharedir)/extension/timescaledb.control" ]
}
preload_configured() { [ -f "$CONF_FILE" ] && grep -q "^shared_preload_libraries.*timescaledb" "$CONF_FILE"; }
preload_active() { psql_pg -c "show shared_preload_libraries" | tr ',' '\n' | tr -d " '\"" | grep -qx timescaledb; }
db_ready() {
    [ "$(psql_pg -d "$DB" -c "select count(*) from pg_extension where extname = 'timescaledb'" 2>/dev/null)" = 1 ]
}

ensure_running
if extension_installed && preload_active && db_ready; then
    ver=$(psql_pg -d "$DB" -c "select extversion from pg_extension where extname = 'timescaledb'")
    lic=$(psql_pg -d "$DB" -c "show timescaledb.license")
    log "already installed: TimescaleDB ${ver} (license ${lic}) in PostgreSQL ${PG_MAJOR}, preloaded, database '${DB}' ready; nothing to do ($(($(date +%s) - START)) s)"
    exit 0
fi

# --- 1. trixie deb-src line from the machine's own apt sources ------------------------------
# Prints "URI<TAB>SIGNED-BY" of the first enabled binary source of this machine's own release
# (the main archive: suite exactly the codename, not -updates or -security).
derive_mirror() {
    local codename="$1" f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v cn="$codename" '
            /^[[:space:]]*deb[[:space:]]/ {
                signed = ""; i = 2
                if ($2 ~ /^\[/) {
                    opts = ""
                    for (; i <= NF; i++) { opts = opts " " $i; if ($i ~ /\]$/) { i++; break } }
                    if (match(opts, /signed-by=[^] ]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
                }
                if ($(i + 1) == cn) { print $i "\t" signed; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        case "$f" in "$SRC_LIST") continue ;; esac
        awk -v cn="$codename" '
            function flush() {
                if (types ~ /(^|[[:space:]])deb([[:space:]]|$)/ && enabled !~ /^[[:space:]]*no/ &&
                    (" " suites " ") ~ ("[[:space:]]" cn "[[:space:]]") && uris != "") {
                    split(uris, u, /[[:space:]]+/); print u[1] "\t" signed; found = 1; exit
                }
                types = uris = suites = signed = enabled = ""
            }
            /^[[:space:]]*#/ { next }
            /^[[:space:]]*$/ { flush(); next }
            {
                key = tolower($1); sub(/:.*/, "", key); val = $0; sub(/^[^:]*:[[:space:]]*/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "signed-by") signed = val
                else if (key == "enabled") enabled = tolower(val)
            }
            END { if (!found) flush() }' "$f"
    done
}

setup_sources() {
    local codename line uri signed
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ -n "$codename" ] || die "cannot tell this machine's Debian release (no VERSION_CODENAME in /etc/os-release)"
    line=$(derive_mirror "$codename" | head -n 1)
    [ -n "$line" ] || die "found no enabled apt source for '${codename}' in /etc/apt/sources.list{,.d/} to derive the ${SUITE} deb-src line from"
    uri=${line%%$'\t'*}
    signed=${line#*$'\t'}
    # An inline key block or a missing file is no use to us: fall back to Debian's keyring.
    if [ -z "$signed" ] || [ ! -f "$signed" ]; then signed=/usr/share/keyrings/debian-archive-keyring.gpg; fi
    local want
    want=$(
        printf '# Written by forewarn scripts/timescaledb.sh: Debian %s *source* packages only, to build TimescaleDB.\n' "$SUITE"
        printf '# The mirror is the one this machine already uses for %s.\n' "$codename"
        printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' "$uri" "$SUITE" "$signed"
    )
    if [ ! -f "$SRC_LIST" ] || [ "$(cat "$SRC_LIST")" != "$want" ]; then
        printf '%s\n' "$want" >"$SRC_LIST"
        log "added deb-src for ${SUITE} (mirror of ${codename}'s main source) in ${SRC_LIST}"
    fi
    # No binary trixie lines are added, but pin anyway: nothing from trixie may ever replace or
    # add a binary package on this bookworm machine.
    local pin
    pin=$(printf '# Written by forewarn scripts/timescaledb.sh: never take binary packages from %s.\nPackage: *\nPin: release n=%s\nPin-Priority: -1\n' "$SUITE" "$SUITE")
    if [ ! -f "$PIN_FILE" ] || [ "$(cat "$PIN_FILE")" != "$pin" ]; then
        printf '%s\n' "$pin" >"$PIN_FILE"
        log "pinned ${SUITE} to priority -1 in ${PIN_FILE}"
    fi
}

if ! extension_installed; then
    setup_sources

    # --- 2. build tools and the server headers ---------------------------------------------
    log "apt-get update"
    : >"$APT_LOG"
    if ! apt_run update; then
        # Leave no source behind that breaks every later apt-get update on this machine.
        rm -f "$SRC_LIST" "$PIN_FILE"
        die "apt-get update failed with the ${SUITE} deb-src line (removed again; log: $APT_LOG)"
    fi
    BUILD_DEPS=(cmake make gcc dpkg-dev "postgresql-server-dev-${PG_MAJOR}" libssl-dev)
    log "apt-get install ${BUILD_DEPS[*]}"
    # --no-upgrade: never upgrade an installed package (the running server's above all).
    apt_run install --no-install-recommends --no-upgrade "${BUILD_DEPS[@]}" ||
        die "apt-get install of the build tools failed (log: $APT_LOG)"

    # --- 3. fetch, build, install ------------------------------------------------------------
    rm -rf "$BUILD_ROOT"
    mkdir -p "$BUILD_ROOT"
    cd "$BUILD_ROOT"
    log "apt-get source timescaledb/${SUITE}"
    apt_run source "timescaledb/${SUITE}" ||
        die "apt-get source timescaledb/${SUITE} failed (log: $APT_LOG)"
    SRC_DIR=$(find "$BUILD_ROOT" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n 1)
    [ -n "$SRC_DIR" ] || die "apt-get source left no timescaledb-* folder in ${BUILD_ROOT}"
    log "building $(basename "$SRC_DIR") against PostgreSQL ${PG_MAJOR} (Apache-2 edition, as Debian builds it)"
    cd "$SRC_DIR"
    # Same options as Debian's debian/rules: -DAPACHE_ONLY=1 (the +dfsg source has no
    # community-licensed tsl/ part), telemetry off. Regression and TAP tests need PostgreSQL's
    # own source tree, so they are off too.
    cmake -S . -B build \
        -DPG_CONFIG="$PG_CONFIG" \
        -DAPACHE_ONLY=ON \
        -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
        -DWARNINGS_AS_ERRORS=OFF \
        -DSEND_TELEMETRY_DEFAULT=OFF -DUSE_TELEMETRY=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        >"$BUILD_ROOT/cmake.log" 2>&1 ||
        { tail -n 30 "$BUILD_ROOT/cmake.log" >&2; die "cmake configure failed (log: $BUILD_ROOT/cmake.log)"; }
    cmake --build build -j "$(nproc)" >"$BUILD_ROOT/build.log" 2>&1 ||
        { tail -n 30 "$BUILD_ROOT/build.log" >&2; die "build failed (log: $BUILD_ROOT/build.log)"; }
    # Unlink old copies first: a running server may have them mapped, and overwriting a mapped
    # library in place would crash its backends (a new inode is safe).
    rm -f "$(pkglibdir)"/timescaledb*.so
    cmake --install build >"$BUILD_ROOT/install.log" 2>&1 ||
        { tail -n 30 "$BUILD_ROOT/install.log" >&2; die "install failed (log: $BUILD_ROOT/install.log)"; }
    extension_installed || die "the build installed no timescaledb.so / timescaledb.control under ${PG_CONFIG}'s folders"
    log "installed $(cd "$(pkglibdir)" && echo timescaledb*.so) into $(pkglibdir)"
else
    log "extension files already in $(pkglibdir): no build needed"
fi

# --- 4. preload ------------------------------------------------------------------------------
if ! preload_configured; then
    # Keep whatever else is preloaded (from the main config, conf.d or ALTER SYSTEM).
    current=$(psql_pg -c "show shared_preload_libraries" | tr -d " '\"")
    libs=$(printf '%s\n' "$current" | tr ',' '\n' | awk 'NF && $0 != "timescaledb"' | paste -sd, -)
    libs=${libs:+${libs},}timescaledb
    printf "# Written by forewarn scripts/timescaledb.sh\nshared_preload_libraries = '%s'\n" "$libs" >"$CONF_FILE"
    chown postgres:postgres "$CONF_FILE" 2>/dev/null || true
    log "set shared_preload_libraries = '${libs}' in ${CONF_FILE}"
fi
# The last file entry wins (postgresql.auto.conf, written by ALTER SYSTEM, is read last).
auto_conf=$(psql_pg -c "select setting from pg_file_settings where name = 'shared_preload_libraries' order by seqno desc limit 1" 2>/dev/null || true)
if [ -n "$auto_conf" ] && ! printf '%s' "$auto_conf" | grep -q timescaledb; then
    die "shared_preload_libraries is overridden elsewhere (value '${auto_conf}', e.g. by ALTER SYSTEM in postgresql.auto.conf) without timescaledb; fix that setting first"
fi
if ! preload_active; then
    log "restarting PostgreSQL ${PG_MAJOR}/${PG_CLUSTER} to load timescaledb (connections will drop for a moment)"
    pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$PG_CLUSTER" restart ||
        die "PostgreSQL did not restart (see /var/log/postgresql/postgresql-${PG_MAJOR}-${PG_CLUSTER}.log)"
    for _ in $(seq 1 30); do psql_pg -c "select 1" >/dev/null 2>&1 && break; sleep 1; done
    preload_active || die "PostgreSQL restarted but does not preload timescaledb"
fi

# --- 5. the test database ----------------------------------------------------------------------
if [ "$(psql_pg -c "select count(*) from pg_database where datname = '${DB}'")" = 0 ]; then
    psql_pg -c "create database \"${DB}\""
    log "created database '${DB}'"
fi
if ! db_ready; then
    psql_pg -d "$DB" -c "create extension timescaledb" || true
    log "created extension timescaledb in database '${DB}'"
fi
db_ready || die "could not create extension timescaledb in database '${DB}'"
ver=$(psql_pg -d "$DB" -c "select extversion from pg_extension where extname = 'timescaledb'")
lic=$(psql_pg -d "$DB" -c "show timescaledb.license")
log "done: TimescaleDB ${ver} (license ${lic}) in PostgreSQL ${PG_MAJOR}, database '${DB}' ready ($(($(date +%s) - START)) s)"
