#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests of the PostgreSQL ledger, on 127.0.0.1 only,
# in a temporary folder, and prints the URL to export as FACTO_TEST_POSTGRES. `stop DIR` stops it.
# Uses Debian's `postgresql` package (installed by .ci/run). As root, the server runs as the
# package's `postgres` user (PostgreSQL refuses to run as root).
set -euo pipefail

bin=$( (ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true) | sort -V | tail -1)
if [ -z "$bin" ]; then
  echo "PostgreSQL is not installed (Debian package postgresql)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-}" = "stop" ]; then
  as_owner "$bin/pg_ctl" -D "$2/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi

dir=$(mktemp -d /tmp/facto-pg.XXXXXX)
# A server half started (a port taken, createdb failing) is stopped and its folder removed.
started=""
cleanup() {
  if [ -z "$started" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
chmod 0755 "$dir"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir"; fi
port=${FACTO_PG_PORT:-$((20000 + RANDOM % 20000))}
as_owner "$bin/initdb" -D "$dir/data" -U facto --auth=trust -E UTF8 >/dev/null
# Tests trade durability for speed; FACTO_PG_DURABLE=1 (benchmarks) keeps the server's defaults.
fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
if [ "${FACTO_PG_DURABLE:-}" = "1" ]; then fast=""; fi
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $fast" \
  start >/dev/null
as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U facto facto
started=yes
echo "$dir postgres://facto@127.0.0.1:$port/facto"
