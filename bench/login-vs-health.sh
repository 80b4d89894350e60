#!/usr/bin/env bash
# Shows that password hashing does not block the event loop: one worker, /health/live at a
# constant 1000 req/s (open loop), first alone, then while 8 connections log in continuously
# (argon2id, default parameters, on the worker's thread pool). Prints both latency rows.
# Usage: bench/login-vs-health.sh   (builds Release into build-bench, private services)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --bench
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j "$(nproc)" --target flightshark flightshark-bench >/dev/null
bin=build-bench/flightshark
gen=build-bench/bench/flightshark-bench

tmp=$(mktemp -d /tmp/flightshark-login-bench.XXXXXX)
server=
cleanup() {
  [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  scripts/services.sh stop "$tmp" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
scripts/services.sh start "$tmp" >/dev/null
# shellcheck disable=SC1091
source "$tmp/env"
export SECRET_KEY=bench-secret-key-0123456789abcdef LOG_LEVEL=warn
# A generous per-address limit: this measures hashing, not the brute-force guard.
export LOGIN_MAX_FAILURES_PER_IP=1000000
"$bin" migrate >/dev/null 2>&1
port=18311
"$bin" serve --port $port --rpc-port 18312 --workers 1 >"$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/health/live" >/dev/null && break; sleep 0.1; done
curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/auth/register" -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench-password-1","full_name":"Bench"}' || true

echo "| run | /health/live p50 (µs) | p90 | p99 | p99.9 | max | errors | logins/s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
row() { # label health_tsv logins_per_s
  read -r rps p50 p90 p99 p999 max errors responses <<<"$2"
  echo "| $1 | $p50 | $p90 | $p99 | $p999 | $max | $errors | $3 |"
}
alone=$("$gen" --scenario bench/scenarios/health-live-open.scn --tsv "http://127.0.0.1:$port")
row "health alone" "$alone" "-"
"$gen" --scenario bench/scenarios/login.scn --duration 13s --tsv "http://127.0.0.1:$port" >"$tmp/login.tsv" &
logins=$!
sleep 1
busy=$("$gen" --scenario bench/scenarios/health-live-open.scn --tsv "http://127.0.0.1:$port")
wait $logins
row "health during logins" "$busy" "$(cut -f1 "$tmp/login.tsv")"
