# Flightshark — developer commands. `make help` lists them.
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: help deps build build-debug run test test-asan bench lint format migrate seed db-shell redis-cli clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

deps: ## install missing Debian packages (as root) or print the apt-get line
	@scripts/deps.sh

build: deps ## release build into ./build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: ## build, start private PostgreSQL/Redis under ./var, migrate, seed, serve on :8000
	@scripts/run.sh

test: ## the whole suite against throwaway PostgreSQL and Redis
	@scripts/test.sh $(BUILD)-test -DCMAKE_BUILD_TYPE=RelWithDebInfo

test-asan: ## the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
	@scripts/test.sh $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DFS_SANITIZE=ON

bench: ## benchmarks side by side with nginx (see docs/BENCHMARKS.md)
	@bench/run.sh

lint: ## cppcheck (must be clean) and clang-tidy (advisory report) over the sources
	@cmake -S . -B $(BUILD) >/dev/null && cmake --build $(BUILD) -j $(JOBS) >/dev/null
	@cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
	  --suppress=missingIncludeSystem -I . runtime api storage actors cli security
	@clang-tidy -p $(BUILD) --quiet \
	  -checks='-*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-bugprone-narrowing-conversions,-bugprone-assignment-in-if-condition,cert-err34-c,clang-analyzer-*,-clang-analyzer-security.insecureAPI.*' \
	  $$(git ls-files 'runtime/*.c' 'api/*.c' 'storage/*.c' 'actors/*.c' 'cli/*.c' 'security/*.c') 2>/dev/null \
	  | grep -E 'warning:|error:' || true

format: ## clang-format every C file in place
	@git ls-files '*.c' '*.h' | xargs clang-format -i

migrate: build ## apply migrations to DATABASE_URL (or the private ./var database)
	@scripts/run.sh migrate

seed: build ## load reference data into DATABASE_URL (or the private ./var database)
	@scripts/run.sh seed

db-shell: ## psql on DATABASE_URL (or the private ./var database)
	@scripts/run.sh db-shell

redis-cli: ## redis-cli on REDIS_URL (or the private ./var instance)
	@scripts/run.sh redis-cli

clean: ## remove build trees (./var is kept; remove it by hand to reset the local database)
	@rm -rf $(BUILD) $(BUILD)-test $(BUILD)-asan $(BUILD)-bench
