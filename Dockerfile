# Flightshark server image: a build stage with the -dev packages and a slim runtime stage with
# only the shared libraries the binary links against. docs/DEPLOYMENT.md describes how to run it.
#
#   docker build -t flightshark .
#   docker run --rm -e DATABASE_URL=... -e REDIS_URL=... -e SECRET_KEY=... -p 8000:8000 flightshark

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- build ----------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build

# The build packages of scripts/deps.sh (keep the two lists in sync). Left out on purpose:
# libcriterion-dev (no tests are built or run here: without it CMake skips the test targets),
# the PostgreSQL and Redis servers, and curl/procps (runtime stage only).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libevent-dev libevhtp-dev libprotobuf-c-dev protobuf-c-compiler \
      libpq-dev libhiredis-dev libzstd-dev libjemalloc-dev \
      libjansson-dev libargon2-dev libssl-dev libcurl4-openssl-dev libxml2-dev libhttp-parser-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build --target flightshark -j "$(nproc)" \
 && strip --strip-unneeded build/flightshark \
 && mkdir -p data

# ---- runtime --------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime

# Runtime libraries only. libevhtp's runtime package in bookworm is libevhtp0 (1.2.18); it pulls
# libevent-openssl-2.1-7 and libonig5 itself. curl is for the HEALTHCHECK.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-pthreads-2.1-7 libevhtp0 libprotobuf-c1 libpq5 libhiredis0.14 \
      libzstd1 libjemalloc2 libjansson4 libargon2-1 libssl3 libcurl4 libxml2 \
      ca-certificates tzdata curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 flightshark \
 && useradd --system --uid 10001 --gid flightshark --home-dir /opt/flightshark \
      --no-create-home --shell /usr/sbin/nologin flightshark

# The binary reads config/flightshark.conf and .env relative to its working directory, and
# `flightshark migrate` reads storage/migrations from there too; the variables below say the
# same thing explicitly so that `docker run -w /elsewhere` still works.
WORKDIR /opt/flightshark
COPY --from=build /src/build/flightshark /usr/local/bin/flightshark
COPY storage/migrations/ /opt/flightshark/storage/migrations/
COPY config/flightshark.conf /opt/flightshark/config/flightshark.conf
# Reference data (airports, airlines, routes) for `flightshark seed`, when the tree has data/.
COPY --from=build /src/data/ /opt/flightshark/data/

ENV FLIGHTSHARK_CONFIG=/opt/flightshark/config/flightshark.conf \
    FLIGHTSHARK_MIGRATIONS_DIR=/opt/flightshark/storage/migrations \
    FLIGHTSHARK_DATA_DIR=/opt/flightshark/data \
    TZ=UTC

USER flightshark:flightshark

# 8000: HTTP API. 8002: internal RPC between workers/hosts (binds RPC_BIND_ADDRESS, 127.0.0.1
# by default; set RPC_BIND_ADDRESS=0.0.0.0 to reach it from other containers).
EXPOSE 8000 8002

# /health/live answers 200 while the process serves HTTP; it does not look at PostgreSQL or
# Redis (that is /health), so a database outage does not mark every server unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${PORT:-8000}/health/live" || exit 1

# The master process handles SIGTERM (graceful drain within SHUTDOWN_TIMEOUT_MS) and SIGHUP
# (reload); give `docker stop` a longer timeout than SHUTDOWN_TIMEOUT_MS.
STOPSIGNAL SIGTERM
CMD ["flightshark", "serve"]
