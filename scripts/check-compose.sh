#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
# 1. the build stage of the Dockerfile installs the build packages of scripts/deps.sh (all but
#    the ones it leaves out on purpose), so the two lists stay in sync;
# 2. docker-compose.yml is valid with every profile enabled, using `docker compose` (v2) or
#    `docker-compose` (v1, Debian's docker-compose 1.29) when one is installed. Without either,
#    says so and exits 0: no build or test depends on Docker.
# Usage: scripts/check-compose.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Packages of deps.sh the image does not need at build time (tests, servers, runtime tools).
not_in_image=" libcriterion-dev postgresql-15 postgresql-client-15 redis-server redis-tools curl procps "
missing=()
read -r -a wanted <<<"$(sed -n '/^packages=(/,/^)/p' scripts/deps.sh | sed '1s/^packages=(//; $d' | tr '\n' ' ')"
for p in "${wanted[@]}"; do
  [[ "$not_in_image" == *" $p "* ]] && continue
  grep -Eq "(^|[[:space:]])$p([[:space:]]|\\|\$)" Dockerfile || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "check-compose: Dockerfile build stage lacks packages of scripts/deps.sh: ${missing[*]}" >&2
  exit 1
fi

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "check-compose: neither 'docker compose' nor 'docker-compose' is installed; skipped" >&2
  exit 0
fi

# The file requires these two; placeholders stand in when the caller's environment (or .env)
# does not set them, so that the check never needs real secrets.
export SECRET_KEY=${SECRET_KEY:-check-compose-placeholder-key}
export POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-check-compose-placeholder}

"${compose[@]}" --profile with-nginx --profile observability -f docker-compose.yml config -q
echo "check-compose: docker-compose.yml is valid ($("${compose[@]}" version --short 2>/dev/null || echo "${compose[*]}"))"
