#!/usr/bin/env bash
# make bench / bench/run.sh [SCENARIO...]
#
# Measures Flightshark side by side with nginx serving a static file of the same size as the
# scenario's response, with the same generator settings, and wrk against nginx to show the
# generator is not the bottleneck. Everything it starts (PostgreSQL, Redis, the server, nginx)
# lives under a temporary directory and is stopped on exit.
#
# SCENARIO is a name in bench/scenarios (health-live) or a path to a .scn file; default: all.
# Environment: BENCH_WORKERS (server workers = nginx workers; default nproc/2, at least 1),
# BENCH_THREADS (generator threads, default nproc/2, at least 1), BENCH_DURATION / BENCH_WARMUP
# (seconds, override the scenarios), BENCH_CONNECTIONS, BENCH_BUILD (default build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${BENCH_BUILD:-build-bench}
bench_bin=$root/$build/bench/flightshark-bench
server_bin=$root/$build/flightshark
default_scenarios=(health-live health airports-search airports-grouped airport-by-code airports-search-open airlines)
scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 ]] || scenarios=("${default_scenarios[@]}")

say() { printf '\n=== %s\n' "$*" >&2; }
warn() { printf '\n!!! WARNING: %s\n' "$*" >&2; }
half_cpus() { local n; n=$(( $(nproc) / 2 )); echo $(( n < 1 ? 1 : n )); }
workers=${BENCH_WORKERS:-$(half_cpus)}
threads=${BENCH_THREADS:-$(half_cpus)}

# ---- tools and build ------------------------------------------------------------------------
scripts/deps.sh --bench || { echo "bench: install the packages above first" >&2; exit 1; }
say "building a Release tree in $build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
if ! cmake --build "$build" -j "$(nproc)" >"/tmp/flightshark-bench-build.$$.log" 2>&1; then
  warn "the full build failed (see /tmp/flightshark-bench-build.$$.log); building the generator alone"
  cmake --build "$build" -j "$(nproc)" --target flightshark-bench
else
  rm -f "/tmp/flightshark-bench-build.$$.log"
fi
[[ -x "$bench_bin" ]] || { echo "bench: $bench_bin was not built" >&2; exit 1; }

# ---- private processes, stopped whatever happens ----------------------------------------------
tmp=$(mktemp -d /tmp/flightshark-bench.XXXXXX)
chmod 755 "$tmp" # PostgreSQL runs as the postgres user when we are root
server_pid="" nginx_pid=""
cleanup() {
  set +e
  if [[ -n "$server_pid" ]]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$server_pid" 2>/dev/null
  fi
  if [[ -n "$nginx_pid" ]]; then
    kill -TERM "$nginx_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  [[ -d "$tmp/services" ]] && scripts/services.sh stop "$tmp/services" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

used_ports=" "
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 20000 + RANDOM % 20000 ))
    [[ "$used_ports" == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then used_ports+="$p "; echo "$p"; return 0; fi
  done
  echo "bench: no free port" >&2; return 1
}
wait_http() { # URL SECONDS PID
  local i
  for i in $(seq 1 $(( $2 * 10 ))); do
    curl -sf -o /dev/null --max-time 1 "$1" && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- Flightshark: database, reference data, server --------------------------------------------
server_up=0 data_mode="none"
port=$(free_port) rpc_port=$(free_port) nginx_port=$(free_port)
if [[ -x "$server_bin" ]] && "$server_bin" serve --help >/dev/null 2>&1; then
  say "starting private PostgreSQL and Redis under $tmp/services"
  FS_PG_FSYNC=off scripts/services.sh start "$tmp/services"
  # shellcheck disable=SC1091
  source "$tmp/services/env"
  export SECRET_KEY=bench-secret-key-0123456789abcdef LOG_LEVEL=warn
  "$server_bin" migrate || warn "flightshark migrate failed"
  data_dir=$root/../shared/data
  if [[ -d "$data_dir" ]]; then
    if "$server_bin" import --help >/dev/null 2>&1; then
      say "IMPORTING THE FULL REAL REFERENCE DATA from $(cd "$data_dir" && pwd)"
      data_mode="real"
      "$server_bin" import ourairports "$data_dir/ourairports/airports.csv" || \
        { data_mode="real (incomplete)"; warn "flightshark import ourairports failed: reference data is incomplete"; }
      "$server_bin" import openflights "$data_dir/openflights" || \
        { data_mode="real (incomplete)"; warn "flightshark import openflights failed: reference data is incomplete"; }
    else
      warn "this flightshark has no 'import' command yet: the database holds NO reference data"
    fi
  else
    say "NO REAL DATA at $data_dir: loading the small built-in seed (flightshark seed)"
    if "$server_bin" seed --help >/dev/null 2>&1; then
      "$server_bin" seed && data_mode="seed" || warn "flightshark seed failed"
    else
      warn "this flightshark has no 'seed' command yet: the database holds NO reference data"
    fi
  fi
  say "starting flightshark serve on :$port with $workers worker(s)"
  setsid "$server_bin" serve --port "$port" --rpc-port "$rpc_port" --workers "$workers" >"$tmp/server.log" 2>&1 &
  server_pid=$!
  if wait_http "http://127.0.0.1:$port/health/live" 90 "$server_pid"; then
    server_up=1
  else
    warn "the server did not answer GET /health/live; Flightshark rows are skipped. Its log:"
    tail -n 20 "$tmp/server.log" >&2 || true
  fi
else
  warn "$server_bin has no 'serve' command yet (or did not build): measuring nginx and the generators only"
fi

# ---- nginx: same worker count, static body of the scenario's response size --------------------
mkdir -p "$tmp/nginx/www" "$tmp/nginx/tmp"
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root root;"
cat >"$tmp/nginx/nginx.conf" <<NGINX
$user_line
worker_processes $workers;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path $tmp/nginx/tmp;
  proxy_temp_path $tmp/nginx/tmp;
  fastcgi_temp_path $tmp/nginx/tmp;
  uwsgi_temp_path $tmp/nginx/tmp;
  scgi_temp_path $tmp/nginx/tmp;
  server {
    listen 127.0.0.1:$nginx_port;
    root $tmp/nginx/www;
    default_type application/json;
    location / { try_files /body.json =404; }
  }
}
NGINX
printf '{}' >"$tmp/nginx/www/body.json"
nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" >"$tmp/nginx/stdout.log" 2>&1 &
nginx_pid=$!
wait_http "http://127.0.0.1:$nginx_port/" 10 "$nginx_pid" || { cat "$tmp/nginx/error.log" >&2; echo "bench: nginx did not start" >&2; exit 1; }

# ---- helpers over the generator's JSON (jansson writes one key per line) ----------------------
jget() { # FILE KEY: first numeric value of "KEY" in the file
  awk -v k="\"$2\":" '$1 == k { v = $2; sub(/,$/, "", v); print v; exit }' "$1"
}
ms() { awk -v us="${1:-0}" 'BEGIN { printf "%.3f", us / 1000 }'; }
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
wrk_ms() { # wrk latency with unit -> ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

mkdir -p "$tmp/r" bench/results
stamp=$(date -u +%Y%m%d-%H%M%S)
rows_md="" gen_md="" json_items=""
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gb=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)

for scn in "${scenarios[@]}"; do
  file=$scn
  [[ -f "$file" ]] || file=bench/scenarios/$scn.scn
  [[ -f "$file" ]] || { warn "no scenario '$scn'"; continue; }
  eval "$("$bench_bin" --scenario "$file" --describe)"
  conns=${BENCH_CONNECTIONS:-$CONNECTIONS}
  dur=${BENCH_DURATION:-$DURATION} warm=${BENCH_WARMUP:-$WARMUP}
  t=$(( threads > conns ? conns : threads ))
  args=(--scenario "$file" -t "$t" -c "$conns" -d "${dur}s" -w "${warm}s" --json)

  # nginx serves the very body Flightshark sent for the first request, or filler of the
  # scenario's reference size when no live 2xx response could be had
  size=$REFERENCE_SIZE size_src="scenario reference_size"
  if [[ $server_up -eq 1 ]]; then
    code=$(curl -s -o "$tmp/first.body" -w '%{http_code}' "http://127.0.0.1:$port$FIRST_PATH" || echo 000)
    if [[ "$code" == 2?? ]]; then
      size=$(wc -c <"$tmp/first.body") size_src="measured ($FIRST_PATH)"
      cp "$tmp/first.body" "$tmp/nginx/www/body.json"
    else
      size_src="scenario reference_size (server answered $code to $FIRST_PATH)"
      head -c "$size" /dev/zero | tr '\0' ' ' >"$tmp/nginx/www/body.json"
    fi
  else
    head -c "$size" /dev/zero | tr '\0' ' ' >"$tmp/nginx/www/body.json"
  fi
  say "$NAME: $DESCRIPTION  [$conns connections, $t thread(s), ${dur}s + ${warm}s warm-up, body $size B: $size_src]"

  fs_json=null
  if [[ $server_up -eq 1 ]]; then
    "$bench_bin" "${args[@]}" --label flightshark "http://127.0.0.1:$port" >"$tmp/r/$NAME.fs.json"
    fs_json=$(cat "$tmp/r/$NAME.fs.json")
  fi
  "$bench_bin" "${args[@]}" --label nginx "http://127.0.0.1:$nginx_port" >"$tmp/r/$NAME.nginx.json"
  wrk_json=null wrk_rps="" wrk_p50="" wrk_p99=""
  if awk -v r="$RATE" 'BEGIN { exit !(r == 0) }'; then
    # `times` in the subshell reports the CPU its child (wrk) used
    ( wrk -t "$t" -c "$conns" -d "${dur}s" --latency "http://127.0.0.1:$nginx_port$FIRST_PATH" >"$tmp/r/$NAME.wrk.txt" 2>&1 || true
      times >"$tmp/r/$NAME.wrk.times" )
    wrk_cpu=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } print t }' "$tmp/r/$NAME.wrk.times")
    wrk_n=$(awk '/requests in/ { print $1; exit }' "$tmp/r/$NAME.wrk.txt")
    wrk_cpu_req=$(awk -v c="${wrk_cpu:-0}" -v n="${wrk_n:-0}" 'BEGIN { printf "%.2f", (n > 0 ? c * 1e6 / n : 0) }')
    wrk_rps=$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/r/$NAME.wrk.txt")
    wrk_p50=$(wrk_ms "$(awk '$1 == "50%" { print $2 }' "$tmp/r/$NAME.wrk.txt")")
    wrk_p99=$(wrk_ms "$(awk '$1 == "99%" { print $2 }' "$tmp/r/$NAME.wrk.txt")")
    wrk_errs=$(awk '/Non-2xx|Socket errors/ { s = $0; gsub(/[^0-9 ]/, " ", s); n = split(s, a, " "); for (i = 1; i <= n; i++) t += a[i] } END { print t + 0 }' "$tmp/r/$NAME.wrk.txt")
    wrk_json="{\"throughput_rps\": ${wrk_rps:-0}, \"p50_ms\": $wrk_p50, \"p99_ms\": $wrk_p99, \"errors\": $wrk_errs, \"cpu_us_per_request\": $wrk_cpu_req}"
  fi

  errors_cell() { # FILE: "0" or "N (kind n, ...)"
    local f=$1 k v kinds=""
    for k in connect timeout non2xx read parse closed; do
      v=$(jget "$f" "$k"); [[ "${v:-0}" == 0 ]] || kinds+="${kinds:+, }$k $v"
    done
    printf '%s%s' "$(jget "$f" total)" "${kinds:+ ($kinds)}"
  }
  row() { # FILE LABEL
    local f=$1 label=$2
    printf '| %s | %s | %.0f | %s | %s | %s | %s |\n' "$NAME" "$label" "$(jget "$f" throughput_rps)" \
      "$(ms "$(jget "$f" p50)")" "$(ms "$(jget "$f" p99)")" "$(ms "$(jget "$f" p99_9)")" "$(errors_cell "$f")"
  }
  n=$tmp/r/$NAME.nginx.json
  if [[ $server_up -eq 1 ]]; then
    f=$tmp/r/$NAME.fs.json
    rows_md+=$(row "$f" flightshark)$'\n'
    rows_md+=$(row "$n" nginx)$'\n'
    rows_md+="| $NAME | **flightshark / nginx** | **$(ratio "$(jget "$f" throughput_rps)" "$(jget "$n" throughput_rps)")** | $(ratio "$(jget "$f" p50)" "$(jget "$n" p50)") | $(ratio "$(jget "$f" p99)" "$(jget "$n" p99)") | $(ratio "$(jget "$f" p99_9)" "$(jget "$n" p99_9)") | |"$'\n'
  else
    rows_md+="| $NAME | flightshark | not run (server unavailable) | | | | |"$'\n'
    rows_md+=$(row "$n" nginx)$'\n'
  fi
  if [[ -n "$wrk_rps" ]]; then
    gen_md+=$(printf '| %s | %.0f | %s | %s | %.2f | %.0f | %s | %s | %s | %s |' "$NAME" "$(jget "$n" throughput_rps)" \
      "$(ms "$(jget "$n" p50)")" "$(ms "$(jget "$n" p99)")" "$(jget "$n" generator_cpu_us_per_request)" \
      "$wrk_rps" "$wrk_p50" "$wrk_p99" "$wrk_cpu_req" "$(ratio "$(jget "$n" throughput_rps)" "$wrk_rps")")$'\n'
  fi
  json_items+="${json_items:+,}
  {\"scenario\": \"$NAME\", \"file\": \"$file\", \"response_bytes\": $size, \"response_size_source\": \"${size_src//\"/\\\"}\",
   \"flightshark\": $fs_json,
   \"nginx\": $(cat "$n"),
   \"wrk_nginx\": $wrk_json}"
done

# ---- report ------------------------------------------------------------------------------------
cmdline="bench/run.sh ${*:-}"
md=$(cat <<MD
# Flightshark vs nginx — $stamp (UTC)

Machine: $(nproc) CPUs ($cpu_model), $mem_gb GiB RAM, $(uname -sr).
Command: \`${cmdline% }\` — server workers = nginx workers = $workers, generator threads = $threads.
Reference data: $data_mode. nginx serves a static file of the size of the scenario's first response.

| scenario | target | req/s | p50 ms | p99 ms | p99.9 ms | errors |
|---|---|---:|---:|---:|---:|---:|
${rows_md%$'\n'}

Generator check (both against nginx, same threads and connections; wrk has no warm-up and
reports no p99.9; open-loop scenarios are not run with wrk). "CPU µs/req" is the CPU time the
generator itself spent per response: lower than wrk's means flightshark-bench is no more of a
bottleneck than wrk is.

| scenario | flightshark-bench req/s | p50 ms | p99 ms | CPU µs/req | wrk req/s | wrk p50 ms | wrk p99 ms | wrk CPU µs/req | req/s bench / wrk |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${gen_md%$'\n'}
MD
)
printf '%s\n' "$md" >"bench/results/$stamp.md"
cp "bench/results/$stamp.md" bench/results/latest.md
cat >"bench/results/$stamp.json" <<JSON
{"timestamp": "$stamp", "command": "${cmdline% }", "workers": $workers, "threads": $threads,
 "reference_data": "$data_mode",
 "machine": {"cpus": $(nproc), "cpu_model": "$cpu_model", "memory_gib": $mem_gb, "kernel": "$(uname -sr)"},
 "scenarios": [$json_items
 ]}
JSON
printf '\n%s\n\nwritten: bench/results/%s.md, bench/results/%s.json, bench/results/latest.md\n' "$md" "$stamp" "$stamp"
