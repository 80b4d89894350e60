#!/usr/bin/env bash
# Price ingest throughput against the baseline of issue 7: `psql \copy` of the same rows into
# the same table (price_history), on the same machine, in one run.
#
#   bench/ingest-vs-copy.sh [ROWS] [ROUNDS]      (defaults 500000 rows, 2 rounds)
#
# Builds Release into build-ingest-rel, starts private PostgreSQL + Redis (scripts/services.sh,
# fsync on as in production), writes the rows once as COPY text, then per round:
#   1. TRUNCATE price_history, price_daily; psql \copy the file into price_history;
#   2. TRUNCATE again; ingest-bench sends the same rows to the price-ingest actor as
#      PriceBatch asks with wait_commit (5000 rows per message, 4 outstanding), i.e. COPY into
#      the staging table, INSERT .. ON CONFLICT DO NOTHING, price_daily upsert, COMMIT, and
#      the Redis stream append, every row acknowledged after its commit.
# Prints a Markdown table and the ratio ingest / copy (target: at least 0.5). Environment:
# INGEST_BENCH_ARGS adds ingest-bench options (e.g. "--no-stream" or "--msg 10000").
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-500000}
rounds=${2:-2}

cmake -S . -B build-ingest-rel -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-ingest-rel -j "$(nproc)" --target ingest-bench >/dev/null
bench=build-ingest-rel/bench/ingest-bench

tmp=$(mktemp -d /tmp/flightshark-ingest-bench.XXXXXX)
cleanup() {
  scripts/services.sh stop "$tmp" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
scripts/services.sh start "$tmp" >/dev/null
# shellcheck disable=SC1091
source "$tmp/env"
chmod 755 "$tmp"
psql=("$FS_PG_BIN/psql" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1)

"$bench" --rows "$rows" --tsv "$tmp/rows.tsv" --gen-only
# ingest-bench migrates; a zero-row run is enough for the schema
"$bench" --rows 1 --no-stream >/dev/null
cols="time, origin_code, destination_code, airline, departure_date, cabin_class, price, currency, source"

now() { date +%s.%N; }
reset() { "${psql[@]}" -c "TRUNCATE price_history, price_daily" -c "CHECKPOINT"; }
count() { "${psql[@]}" -c "SELECT count(*) FROM price_history"; }

echo "| round | method | rows | seconds | rows/s |"
echo "|---|---|---:|---:|---:|"
best_copy=0
best_ingest=0
for round in $(seq 1 "$rounds"); do
  reset
  t0=$(now)
  "${psql[@]}" -c "\\copy price_history ($cols) FROM '$tmp/rows.tsv'"
  t1=$(now)
  n=$(count)
  [[ $n -eq $rows ]] || { echo "psql \\copy wrote $n of $rows rows" >&2; exit 1; }
  secs=$(echo "$t1 - $t0" | bc -l)
  copy_rps=$(echo "$rows / $secs" | bc)
  printf '| %d | psql \\copy | %d | %.2f | %d |\n' "$round" "$rows" "$secs" "$copy_rps"
  (( copy_rps > best_copy )) && best_copy=$copy_rps

  reset
  # shellcheck disable=SC2086
  out=$("$bench" --rows "$rows" ${INGEST_BENCH_ARGS:-})
  n=$(count)
  [[ $n -eq $rows ]] || { echo "ingest wrote $n of $rows rows: $out" >&2; exit 1; }
  daily=$("${psql[@]}" -c "SELECT sum(sample_count) FROM price_daily")
  [[ $daily -eq $rows ]] || { echo "price_daily counts $daily of $rows rows" >&2; exit 1; }
  secs=$(jq -r .seconds <<<"$out")
  ingest_rps=$(jq -r .rows_per_s <<<"$out")
  printf '| %d | price-ingest actor (%s) | %d | %.2f | %d |\n' "$round" \
    "$(jq -r '"\(.msg_rows)/msg, \(.inflight) in flight, \(.batch_rows)/txn, stream \(.stream)"' <<<"$out")" \
    "$rows" "$secs" "$ingest_rps"
  (( ingest_rps > best_ingest )) && best_ingest=$ingest_rps
done
echo
echo "best: psql \\copy $best_copy rows/s, price-ingest $best_ingest rows/s, ratio $(echo "scale=2; $best_ingest / $best_copy" | bc -l) (target >= 0.5)"
