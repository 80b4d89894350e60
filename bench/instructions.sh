#!/usr/bin/env bash
# bench/instructions.sh ENDPOINT [N]
#
# Instructions the server executes per request of ENDPOINT (a path such as /health/live or
# '/airports/search?q=lon&limit=10'), N requests (default 20000) sent by flightshark-bench in
# closed loop over 1 connection to a single-worker server.
#
# Method: baseline subtraction. The same run is made twice: start the server, wait for
# /health/live, send INSTR_WARMUP (default 200) warm-up requests (lazy initialisation, first-touch
# caches), then either send N requests (run A) or idle for as long as run A's requests took
# (run B), then stop the server. Everything but the N requests is common to both runs, so
#   instructions/request = (worker instructions in A - worker instructions in B) / N.
# Counter: `perf stat -e instructions:u` attached to the worker when hardware counters are
# available (checked with `perf stat -e instructions true`); otherwise valgrind --tool=callgrind
# (Ir = instructions executed in user space, exact and repeatable, but the server runs ~50x
# slower). Under callgrind the forked worker writes its own callgrind.out.<pid> on exit; the
# master's file is ignored. (callgrind_control cannot zero/dump a forked child: vgdb is only set
# up in the process valgrind started, so the counts are taken over whole runs.)
#
# Environment: INSTR_KEEP=DIR keeps run A's worker profile (callgrind_annotate DIR/callgrind.out.*),
# INSTR_TARGET=flightshark (default) or nginx (the same measurement of nginx serving a
# small static file, for reference), INSTR_METHOD=perf|callgrind to force one, BENCH_BUILD.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
endpoint=${1:?usage: bench/instructions.sh ENDPOINT [N]   e.g. bench/instructions.sh /health/live 20000}
n=${2:-20000}
warmup=${INSTR_WARMUP:-200}
target=${INSTR_TARGET:-flightshark}
build=${BENCH_BUILD:-build-bench}
bench_bin=$root/$build/bench/flightshark-bench
server_bin=$root/$build/flightshark
[[ "$endpoint" == /* ]] || { echo "instructions: ENDPOINT must start with /" >&2; exit 2; }

if [[ ! -x "$bench_bin" || ( "$target" == flightshark && ! -x "$server_bin" ) ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)"
fi

method=${INSTR_METHOD:-}
if [[ -z "$method" ]]; then
  if perf stat -e instructions:u -x, true 2>&1 >/dev/null | grep -qE '^[0-9]+,'; then method=perf; else method=callgrind; fi
fi
command -v valgrind >/dev/null || [[ "$method" == perf ]] || { echo "instructions: needs valgrind (scripts/deps.sh --bench)" >&2; exit 1; }
echo "instructions: counting with $method" >&2

tmp=$(mktemp -d /tmp/flightshark-instr.XXXXXX)
chmod 755 "$tmp" # PostgreSQL runs as the postgres user when we are root
server_pid=""
stop_server() {
  [[ -n "$server_pid" ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
cleanup() { stop_server; [[ -d "$tmp/services" ]] && scripts/services.sh stop "$tmp/services" >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(( 20000 + RANDOM % 20000 ))
rpc_port=$(( port + 1 ))

if [[ "$target" == flightshark ]]; then
  "$server_bin" serve --help >/dev/null 2>&1 || { echo "instructions: $server_bin has no 'serve' command yet" >&2; exit 1; }
  FS_PG_FSYNC=off scripts/services.sh start "$tmp/services"
  # shellcheck disable=SC1091
  source "$tmp/services/env"
  export SECRET_KEY=bench-secret-key-0123456789abcdef LOG_LEVEL=warn
  "$server_bin" migrate
  data_dir=$root/../shared/data
  if [[ -d "$data_dir" ]] && "$server_bin" import --help >/dev/null 2>&1; then
    "$server_bin" import ourairports "$data_dir/ourairports/airports.csv" && "$server_bin" import openflights "$data_dir/openflights"
  elif "$server_bin" seed --help >/dev/null 2>&1; then
    "$server_bin" seed
  else
    echo "instructions: WARNING: no import/seed command: the database holds no reference data" >&2
  fi
  server_cmd=("$server_bin" serve --port "$port" --rpc-port "$rpc_port" --workers 1)
  ready=/health/live
else
  mkdir -p "$tmp/nginx/www" "$tmp/nginx/tmp"
  printf '{"status":"alive"}' >"$tmp/nginx/www/body.json"
  user_line=""; [[ $(id -u) -eq 0 ]] && user_line="user root root;"
  cat >"$tmp/nginx/nginx.conf" <<NGINX
$user_line
worker_processes 1; daemon off; master_process on;
pid $tmp/nginx/nginx.pid; error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 10000000;
  client_body_temp_path $tmp/nginx/tmp; proxy_temp_path $tmp/nginx/tmp; fastcgi_temp_path $tmp/nginx/tmp;
  uwsgi_temp_path $tmp/nginx/tmp; scgi_temp_path $tmp/nginx/tmp;
  server { listen 127.0.0.1:$port; root $tmp/nginx/www; default_type application/json;
           location / { try_files /body.json =404; } } }
NGINX
  server_cmd=(nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log")
  ready=/
fi

wait_ready() {
  for _ in $(seq 1 3000); do
    curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$port$ready" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "instructions: the server did not become ready; log:" >&2; tail -n 20 "$tmp/server.log" >&2; exit 1
}

send() { # COUNT -> prints the elapsed seconds of the run
  "$bench_bin" -c 1 -n "$1" --timeout 60s --json "http://127.0.0.1:$port$endpoint" >"$tmp/send.json"
  local errs; errs=$(awk '$1 == "\"total\":" { sub(/,$/, "", $2); print $2; exit }' "$tmp/send.json")
  [[ "${errs:-1}" == 0 ]] || echo "instructions: WARNING: $errs of $1 requests failed (non-2xx or transport)" >&2
  awk '$1 == "\"duration_s\":" { sub(/,$/, "", $2); print $2; exit }' "$tmp/send.json"
}

# One run; COUNT 0 idles for IDLE seconds instead. Prints the worker's instruction count.
run_once() { # COUNT IDLE
  local count=$1 idle=$2 out=$tmp/run.$1 elapsed
  mkdir -p "$out"
  if [[ "$method" == callgrind ]]; then
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" "${server_cmd[@]}" >"$tmp/server.log" 2>&1 &
  else
    "${server_cmd[@]}" >"$tmp/server.log" 2>&1 &
  fi
  server_pid=$!
  wait_ready
  send "$warmup" >/dev/null
  local perf_pid=""
  if [[ "$method" == perf ]]; then
    local worker; worker=$(pgrep -P "$server_pid" | head -n 1)
    perf stat -e instructions:u -x, -o "$out/perf.csv" -p "$worker" &
    perf_pid=$!
    sleep 0.5
  fi
  if [[ "$count" -gt 0 ]]; then elapsed=$(send "$count"); else sleep "$idle"; elapsed=$idle; fi
  if [[ -n "$perf_pid" ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  local master=$server_pid
  stop_server
  echo "$elapsed" >"$out/elapsed"
  if [[ "$method" == callgrind ]]; then
    # every process but the master is a worker (a single one with --workers 1)
    local f total=0
    for f in "$out"/callgrind.out.*; do
      [[ "$f" == *".$master" ]] && continue
      total=$(( total + $(awk '$1 == "totals:" { print $2 }' "$f") ))
      [[ -n "${INSTR_KEEP:-}" && "$count" -gt 0 ]] && mkdir -p "$INSTR_KEEP" && cp "$f" "$INSTR_KEEP/"
    done
    echo "$total"
  else
    awk -F, '$3 ~ /instructions/ { print $1; exit }' "$out/perf.csv"
  fi
}

echo "instructions: run A — $warmup warm-up + $n requests of $endpoint ($target, 1 worker)" >&2
a=$(run_once "$n" 0)
elapsed=$(cat "$tmp/run.$n/elapsed")
echo "instructions: run B — $warmup warm-up, then idle ${elapsed}s" >&2
b=$(run_once 0 "$elapsed")
awk -v a="$a" -v b="$b" -v n="$n" -v e="$endpoint" -v t="$target" -v m="$method" 'BEGIN {
  printf "%s %s: %.0f instructions/request (%s; run A %.0f, baseline B %.0f, N=%d)\n", t, e, (a - b) / n, m, a, b, n }'
