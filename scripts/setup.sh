#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install the packages, build hubcache,
# and download a model into the cache (the main job).
#
#   ./scripts/setup.sh [REPO [FILE...]]
#
# REPO defaults to the ONNX model of the project's first seed; set HF_ENDPOINT to
# use a mirror or a 'hubcache serve' on another machine, HF_TOKEN for private repos.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build="${HUBCACHE_SETUP_BUILD_DIR:-build}"
# An existing build folder (say, the test suite's) is kept as it is configured.
[[ -f $build/CMakeCache.txt ]] ||
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBCACHE_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target hubcache_cli >&2  # progress on stderr: stdout is the path alone
repo="${1:-xiaoyao9184/image-faulty}"
shift || true
echo "downloading ${repo} from ${HF_ENDPOINT:-https://huggingface.co} into the cache..." >&2
"$build/hubcache" download "$repo" "$@"
