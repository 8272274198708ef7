#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on loopback for the store tests; print its URL.
#
#   eval "$(bash scripts/start_postgres.sh)"   # exports AAR_TEST_PG_URL
#   bash scripts/start_postgres.sh --stop       # stops it
#
# Installs Debian's `postgresql` when no server binaries are found (needs root and apt), creates a
# cluster in $AAR_PG_DIR (default /tmp/aar-pg-<uid>) owned by the `postgres` user when run as root,
# listening on 127.0.0.1:$AAR_PG_PORT (default 55432) only, trust auth for local connections.
set -euo pipefail
PORT="${AAR_PG_PORT:-55432}"
DIR="${AAR_PG_DIR:-/tmp/aar-pg-$(id -u)}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$BIN" ] && command -v pg_ctl >/dev/null 2>&1; then BIN="$(dirname "$(command -v pg_ctl)")"; fi
if [ -z "$BIN" ]; then
  echo "installing postgresql (apt-get)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || {
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
  BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
as_owner() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [ "${1:-}" = "--stop" ]; then
  [ -d "$DIR/data" ] && as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
  exit 0
fi
mkdir -p "$DIR"
[ "$(id -u)" = "0" ] && chown postgres "$DIR"
if [ ! -f "$DIR/data/PG_VERSION" ]; then
  as_owner "$BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync >&2
fi
if ! as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" start >&2
fi
for _ in $(seq 1 30); do
  as_owner "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" && break
  sleep 1
done
as_owner "$BIN/psql" -q -h 127.0.0.1 -p "$PORT" -U postgres -tc \
  "SELECT 1 FROM pg_database WHERE datname = 'aar_test'" | grep -q 1 || \
  as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres aar_test >&2
echo "export AAR_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$PORT/aar_test"
