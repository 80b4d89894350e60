#!/usr/bin/env bash
# make test / make test-asan: build, start throwaway PostgreSQL and Redis, run every criterion
# suite through ctest, and stop the servers whatever the outcome.
# Usage: scripts/test.sh BUILD_DIR [cmake args...]   (FS_TEST=regex runs matching suites only)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: test.sh BUILD_DIR [cmake args]}; shift

scripts/deps.sh
cmake -S . -B "$build" "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"

services=$(mktemp -d /tmp/flightshark-test.XXXXXX)
# A test process that crashes cannot run its teardown: stop any server it left behind.
cleanup() {
  pkill -TERM -f "^$(pwd)/$build/flightshark serve" 2>/dev/null || true
  scripts/services.sh stop "$services" || true
  rm -rf "$services"
}
trap cleanup EXIT
FS_PG_FSYNC=off scripts/services.sh start "$services"
# shellcheck disable=SC1091
source "$services/env"
export SECRET_KEY=test-secret-key-0123456789abcdef
export FS_TEST_SERVICES_DIR="$services"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

"$build/flightshark" migrate
ctest --test-dir "$build" --output-on-failure ${FS_TEST:+-R "$FS_TEST"}
