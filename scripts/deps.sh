#!/usr/bin/env bash
# Installs the Debian packages Flightshark needs to build, test and run.
# As root: installs what is missing. Otherwise: prints the apt-get line and exits 1.
# Usage: scripts/deps.sh [--bench]   (--bench adds the benchmark tools)
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libevent-dev libevhtp-dev libprotobuf-c-dev protobuf-c-compiler
  libpq-dev libhiredis-dev libzstd-dev libjemalloc-dev libcriterion-dev
  libjansson-dev libargon2-dev libssl-dev libcurl4-openssl-dev libxml2-dev libhttp-parser-dev
  postgresql-15 postgresql-client-15 redis-server redis-tools
  curl procps tzdata
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(nginx-light wrk valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package may start its own cluster/server; ours are private, so stop those.
  exit 0
fi

echo "deps: missing packages. Run as root:" >&2
echo "  sudo apt-get install -y ${missing[*]}" >&2
exit 1
