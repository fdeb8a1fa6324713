#!/usr/bin/env bash
# Run a private PostgreSQL server for clambake from the installed binaries.
#
#   tools/local-postgres.sh start|stop|status
#
# Data:  ${CLAMBAKE_LOCAL_PG_DIR:-$HOME/.clambake/pg}   (root with HOME=/root: /var/lib/clambake-pg)
# Port:  ${CLAMBAKE_DB_PORT:-5433} on 127.0.0.1
# First start creates the cluster (superuser postgres, password postgres) and database docdb,
# which matches clambake's default connection settings.
set -euo pipefail

PORT="${CLAMBAKE_DB_PORT:-5433}"
if [[ -n "${CLAMBAKE_LOCAL_PG_DIR:-}" ]]; then
    BASE="$CLAMBAKE_LOCAL_PG_DIR"
elif [[ $(id -u) -eq 0 && "${HOME:-/root}" == /root* ]]; then
    BASE=/var/lib/clambake-pg          # the postgres user cannot traverse /root
else
    BASE="$HOME/.clambake/pg"
fi
DATA="$BASE/data"
LOG="$BASE/server.log"
SOCKDIR="$BASE/run"

die() { echo "local-postgres: $*" >&2; exit 1; }

# initdb on PATH, else `pg_config --bindir`, else newest /usr/lib/postgresql/*/bin.
find_bindir() {
    local p
    if p=$(command -v initdb 2>/dev/null); then
        dirname "$(readlink -f "$p")"; return
    fi
    if p=$(pg_config --bindir 2>/dev/null) && [[ -x "$p/initdb" ]]; then
        echo "$p"; return
    fi
    p=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n "$p" && -x "$p/initdb" ]] && { echo "$p"; return; }
    return 1
}

BINDIR=$(find_bindir) || die "no PostgreSQL server binaries found; install postgresql (e.g. apt-get install postgresql)"

# Run a server binary, as the postgres OS user when we are root.
pg() {
    local cmd="$BINDIR/$1"; shift
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$cmd" "$@")
    else
        "$cmd" "$@"
    fi
}

facts() {
    # Report the port the server really listens on (line 4 of postmaster.pid).
    local port; port=$(sed -n 4p "$DATA/postmaster.pid" 2>/dev/null) || true
    echo "postgres $1: host=127.0.0.1 port=${port:-$PORT} dbname=docdb user=postgres password=postgres (data: $BASE)"
}

running() { pg pg_ctl -D "$DATA" status >/dev/null 2>&1; }

create_cluster() {
    mkdir -p "$BASE"
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user"
        chown postgres: "$BASE"
        runuser -u postgres -- test -w "$BASE" \
            || die "the postgres OS user cannot write $BASE (set CLAMBAKE_LOCAL_PG_DIR elsewhere)"
    fi
    chmod 700 "$BASE"
    local major auth pwfile="$BASE/.pwfile"
    major=$("$BINDIR/initdb" --version | sed -E 's/.* ([0-9]+).*/\1/')
    auth=scram-sha-256; (( major >= 14 )) || auth=md5   # scram is the default from 14 on
    printf 'postgres\n' > "$pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$pwfile"
    pg initdb -D "$DATA" -U postgres --pwfile="$pwfile" -E UTF8 \
        --auth-host="$auth" --auth-local="$auth" >/dev/null || { rm -f "$pwfile"; die "initdb failed"; }
    rm -f "$pwfile"
    # Run-time settings; postgresql.auto.conf overrides postgresql.conf.
    cat >> "$DATA/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKDIR'
EOF
    [[ $(id -u) -eq 0 ]] && chown postgres: "$DATA/postgresql.auto.conf"
    return 0
}

start() {
    if [[ -f "$DATA/PG_VERSION" ]] && running; then
        facts "already running"; return 0
    fi
    local fresh=0
    if [[ ! -f "$DATA/PG_VERSION" ]]; then
        create_cluster; fresh=1
    fi
    mkdir -p "$SOCKDIR"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$SOCKDIR"
    # The port is given at each start, so CLAMBAKE_DB_PORT may change between runs.
    pg pg_ctl -D "$DATA" -l "$LOG" -o "-p $PORT" -w -t 60 start >/dev/null \
        || { tail -n 20 "$LOG" >&2 || true; die "server failed to start (log: $LOG)"; }
    if (( fresh )); then
        local psql="$BINDIR/psql"; [[ -x "$psql" ]] || psql=psql
        PGPASSWORD=postgres "$psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres \
            -c 'CREATE DATABASE docdb' >/dev/null || die "could not create database docdb"
    fi
    facts "running"
}

stop() {
    if [[ -f "$DATA/PG_VERSION" ]] && running; then
        pg pg_ctl -D "$DATA" -w -t 60 -m fast stop >/dev/null
        echo "postgres stopped (data: $BASE)"
    else
        echo "postgres not running (data: $BASE)"
    fi
}

status() {
    if [[ -f "$DATA/PG_VERSION" ]] && running; then
        facts "running"
    else
        echo "postgres not running (data: $BASE)"; return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
