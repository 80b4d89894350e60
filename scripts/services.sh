#!/usr/bin/env bash
# Private PostgreSQL and Redis instances for development, tests and benchmarks.
#
#   scripts/services.sh start DIR   initdb (once) and start both under DIR; writes DIR/env
#   scripts/services.sh stop DIR    stop both (by pid file, never by name)
#   scripts/services.sh pg-stop DIR / pg-start DIR    stop or start PostgreSQL only
#   scripts/services.sh status DIR  exit 0 when both are running
#
# Both listen on unix sockets inside DIR only (no TCP port to collide with), so several
# instances (make run, make test, a test's own instance) can live side by side.
# DIR/env holds DATABASE_URL and REDIS_URL for `source`.
set -euo pipefail

cmd=${1:?usage: services.sh start|stop|pg-start|pg-stop DIR}
dir=${2:?usage: services.sh start|stop|pg-start|pg-stop DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x "$pg_bin/initdb" ]] || { echo "services: PostgreSQL server binaries not found (run scripts/deps.sh)" >&2; exit 1; }

# PostgreSQL refuses to run as root; the Debian package provides the postgres user.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_user() { if [[ $(id -u) -eq 0 ]]; then echo postgres; else id -un; fi; }

pg_running() { [[ -f "$dir/pg/data/PG_VERSION" ]] && as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" status >/dev/null 2>&1; }

pg_start() {
  local data="$dir/pg/data" sock="$dir/pg"
  mkdir -p "$sock"
  if pg_running; then return 0; fi
  if [[ $(id -u) -eq 0 ]]; then chown postgres "$sock"; chmod 755 "$dir" "$sock"; fi
  if [[ ! -f "$data/PG_VERSION" ]]; then
    as_pg "$pg_bin/initdb" -D "$data" -U "$(pg_user)" --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 \
      || { cat "$dir/pg/initdb.log" >&2; exit 1; }
  fi
  as_pg "$pg_bin/pg_ctl" -D "$data" -l "$dir/pg/server.log" -w -t 30 \
    -o "-c listen_addresses='' -c unix_socket_directories='$sock' -c fsync=${FS_PG_FSYNC:-on} -c max_connections=200" \
    start >/dev/null || { tail -n 20 "$dir/pg/server.log" >&2; exit 1; }
  if ! as_pg "$pg_bin/../bin/psql" -h "$sock" -U "$(pg_user)" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='flightshark'" | grep -q 1; then
    as_pg psql -h "$sock" -U "$(pg_user)" -d postgres -qc "CREATE DATABASE flightshark" >/dev/null
  fi
}

pg_stop() {
  [[ -f "$dir/pg/data/postmaster.pid" ]] || return 0
  as_pg "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
}

redis_running() { [[ -f "$dir/redis/redis.pid" ]] && kill -0 "$(cat "$dir/redis/redis.pid")" 2>/dev/null; }

redis_start() {
  mkdir -p "$dir/redis"
  if redis_running; then return 0; fi
  redis-server --port 0 --unixsocket "$dir/redis/redis.sock" --unixsocketperm 777 \
    --save '' --appendonly no --daemonize yes --pidfile "$dir/redis/redis.pid" \
    --logfile "$dir/redis/redis.log" --dir "$dir/redis"
  for _ in $(seq 1 100); do [[ -S "$dir/redis/redis.sock" ]] && return 0; sleep 0.05; done
  echo "services: redis did not start" >&2; tail -n 20 "$dir/redis/redis.log" >&2; exit 1
}

redis_stop() {
  local pidfile="$dir/redis/redis.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid; pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$pidfile"
}

write_env() {
  cat >"$dir/env" <<ENV
export DATABASE_URL='postgresql:///flightshark?host=$dir/pg&user=$(pg_user)'
export REDIS_URL='unix://$dir/redis/redis.sock'
export FS_PG_BIN='$pg_bin'
ENV
}

case "$cmd" in
  start) pg_start; redis_start; write_env ;;
  status) pg_running && redis_running ;;
  stop) redis_stop; pg_stop ;;
  pg-start) pg_start ;;
  pg-stop) pg_stop ;;
  redis-start) redis_start ;;
  redis-stop) redis_stop ;;
  *) echo "usage: services.sh start|stop|pg-start|pg-stop|redis-start|redis-stop DIR" >&2; exit 2 ;;
esac
