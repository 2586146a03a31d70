#!/usr/bin/env bash
# Runs the whole test suite from a clean checkout: installs the packages, builds
# everything, runs ctest. Used as-is by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
build="${HUBCACHE_TEST_BUILD_DIR:-build}"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHUBCACHE_BUILD_TESTS=ON >/dev/null
cmake --build "$build"
ctest --test-dir "$build" --output-on-failure --no-tests=error -j"$(nproc)" "$@"
