#!/usr/bin/env bash
# make run (and make migrate / seed / db-shell / redis-cli):
#   deps -> release build -> private PostgreSQL and Redis under ./var unless DATABASE_URL /
#   REDIS_URL are set -> migrate -> reference data -> serve on :8000 in the foreground.
# Ctrl-C stops the server and the services this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-serve}
root=$(pwd)
var="$root/var"
bin="$root/build/flightshark"

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target flightshark >/dev/null

started_services=0
if [[ -z "${DATABASE_URL:-}" || -z "${REDIS_URL:-}" ]]; then
  if ! scripts/services.sh status "$var" 2>/dev/null; then
    scripts/services.sh start "$var"
    started_services=1
  else
    scripts/services.sh start "$var"   # refreshes var/env
  fi
  saved_db=${DATABASE_URL:-}; saved_redis=${REDIS_URL:-}
  # shellcheck disable=SC1091
  source "$var/env"
  [[ -n "$saved_db" ]] && DATABASE_URL=$saved_db
  [[ -n "$saved_redis" ]] && REDIS_URL=$saved_redis
  export DATABASE_URL REDIS_URL
fi
stop_services() { [[ $started_services == 1 ]] && scripts/services.sh stop "$var" || true; }

# A development secret that survives restarts (tokens stay valid), never committed.
if [[ -z "${SECRET_KEY:-}" ]] && ! grep -qs '^SECRET_KEY=.' .env; then
  mkdir -p "$var"
  [[ -s "$var/secret_key" ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$var/secret_key"
  SECRET_KEY=$(cat "$var/secret_key")
  export SECRET_KEY
fi

load_reference_data() {
  local count
  count=$(psql "$DATABASE_URL" -tAc "SELECT count(*) FROM airports" 2>/dev/null || echo 0)
  if [[ "${count:-0}" != 0 && -z "${FORCE_IMPORT:-}" ]]; then
    echo "run: reference data present ($count airports); FORCE_IMPORT=1 re-imports"
    return 0
  fi
  local data=${FLIGHTSHARK_DATA_DIR:-}
  [[ -z "$data" && -d "$root/../shared/data" ]] && data="$root/../shared/data"
  if [[ -n "$data" && -f "$data/ourairports/airports.csv" ]]; then
    echo "run: importing reference data from $data"
    "$bin" import ourairports "$data/ourairports/airports.csv" "$data/ourairports/countries.csv"
    "$bin" import openflights "$data/openflights"
  else
    echo "run: no reference data directory (FLIGHTSHARK_DATA_DIR); loading the built-in seed"
    "$bin" seed
  fi
}

case "$action" in
  migrate) "$bin" migrate; stop_services ;;
  seed) "$bin" migrate; FORCE_IMPORT=1 load_reference_data; stop_services ;;
  db-shell) psql "$DATABASE_URL" ;;
  redis-cli)
    if [[ "$REDIS_URL" == unix://* ]]; then redis-cli -s "${REDIS_URL#unix://}"; else redis-cli -u "$REDIS_URL"; fi ;;
  serve)
    trap stop_services EXIT
    "$bin" migrate
    if "$bin" import --help >/dev/null 2>&1; then load_reference_data; fi
    # Not exec: the trap must stop the services after the server exits on Ctrl-C.
    "$bin" serve --port "${PORT:-8000}" &
    server=$!
    trap 'kill -INT $server 2>/dev/null || true' INT TERM
    wait $server || true
    wait $server 2>/dev/null || true
    ;;
  *) echo "usage: scripts/run.sh [serve|migrate|seed|db-shell|redis-cli]" >&2; exit 2 ;;
esac
