#!/usr/bin/env bash
# Server time of cold flight searches, from the Server-Timing header of each answer.
#
#   bench/search-server-time.sh [BASE_URL] [N] [ORIGIN-DESTINATION ...]
#
# Sends N searches one after another (no queueing in the server), each a cache miss (a distinct
# date, passenger count and cabin), against a running server (default http://127.0.0.1:8000,
# e.g. `make run`), and prints p50 / p90 / p99 / max of the server's own time in ms.
set -euo pipefail
base=${1:-http://127.0.0.1:8000}
n=${2:-300}
shift $(( $# > 2 ? 2 : $# ))
markets=("$@")
[[ ${#markets[@]} -gt 0 ]] || markets=(JFK-BKK MAD-NRT MAN-BKK LAX-SIN)
cabins=(economy premium_economy business first)
seed=$(( RANDOM % 200 ))
for m in "${markets[@]}"; do
  o=${m%-*} d=${m#*-}
  for i in $(seq 1 "$n"); do
    day=$(( 10 + (i + seed) % 300 ))
    date=$(date -u -d "+$day days" +%F)
    q="origin=$o&destination=$d&departure_date=$date&passengers=$(( 1 + i % 9 ))&cabin_class=${cabins[$(( i / 9 % 4 ))]}"
    curl -s -o /dev/null -D - "$base/flights/search?$q" | tr -d '\r' | awk -F'dur=' '/^[Ss]erver-[Tt]iming:/ { print $2 }'
  done | sort -n | awk -v m="$m" '{ a[NR] = $1 } END {
    if (NR == 0) { print m ": no answers"; exit 1 }
    printf "%s: n=%d  p50=%.3f  p90=%.3f  p99=%.3f  max=%.3f ms\n", m, NR, a[int(NR * 0.5) + 1], a[int(NR * 0.9) + 1], a[int(NR * 0.99) + 1], a[NR] }'
done
