#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (issue 15): no system service, no fixed port.
#
#   eval "$(.ci/postgres.sh start)"   # prints `export HLOPS_TEST_PG_URL=... HLOPS_PG_DIR=...`
#   .ci/postgres.sh stop              # stops the cluster in $HLOPS_PG_DIR and removes it
#
# start: installs PostgreSQL with apt-get when no initdb is found (fresh Debian, root),
# runs initdb into a temp dir (as the `postgres` system user when root: initdb refuses
# root), starts it on a free 127.0.0.1 port with its unix socket inside the temp dir, and
# creates a role `hlops` (CREATEDB) and its database. The tests create one database per
# module/server in it (tests/support/postgres.py). Exits non-zero if anything fails, so CI
# stops there rather than skipping the PostgreSQL tests.
set -euo pipefail

find_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  echo ""
}

start() {
  local bin root port as_user=()
  bin=$(find_bin)
  if [ -z "$bin" ]; then
    echo "postgres.sh: installing PostgreSQL with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bin=$(find_bin)
    [ -n "$bin" ] || { echo "postgres.sh: no initdb after installing postgresql" >&2; exit 1; }
  fi
  root=$(mktemp -d /tmp/hlops-ci-pg.XXXXXX)
  mkdir -p "$root/sock"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$root" postgres
    chown -R postgres "$root"
    as_user=(runuser -u postgres --)
  fi
  "${as_user[@]}" "$bin/initdb" -D "$root/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 >"$root/initdb.log" 2>&1 \
    || { cat "$root/initdb.log" >&2; exit 1; }
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "${as_user[@]}" "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 \
    -o "-p $port -k $root/sock -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c full_page_writes=off" \
    start >&2 || { cat "$root/server.log" >&2; exit 1; }
  "$bin/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -c "CREATE ROLE hlops LOGIN CREATEDB" -c "CREATE DATABASE hlops OWNER hlops" >&2
  echo "$bin" >"$root/bin"
  echo "export HLOPS_TEST_PG_URL=postgresql://hlops@127.0.0.1:$port/hlops"
  echo "export HLOPS_PG_DIR=$root"
}

stop() {
  local root=${HLOPS_PG_DIR:-} as_user=()
  [ -n "$root" ] && [ -d "$root" ] || return 0
  [ "$(id -u)" = 0 ] && as_user=(runuser -u postgres --)
  "${as_user[@]}" "$(cat "$root/bin")/pg_ctl" -D "$root/data" -m fast -w stop >&2 || true
  rm -rf "$root"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
