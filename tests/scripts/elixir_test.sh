#!/usr/bin/env bash
# The Elixir binding (bindings/elixir): `mix test` compiles the NIF against this build's
# libhubcache.so (with -Werror) and runs the ExUnit tests against a real `hubcache serve`
# over an imported repo, reached through HF_ENDPOINT. Offline and self-contained, as on a
# fresh machine: Mix keeps its home, Hex's and its build folder inside the build directory,
# the project has no dependencies, and nothing is written to the source tree.
set -euo pipefail
: "${HUBCACHE_BUILD_DIR:?}" "${HUBCACHE_SOURCE_DIR:?}" "${HUBCACHE_CLI:?}"
command -v mix >/dev/null || {
  echo "mix not found: scripts/install-deps.sh --test installs elixir and erlang-dev" >&2
  exit 1
}

# The served repo: a 3 MB ONNX file, a config, and a file whose copy on the server is
# damaged after the import (same size, one bit flipped), so the server sends bytes that do
# not match the hash it announces.
fixture=$(mktemp -d)
serve_pid=""
cleanup() {
  [[ -z $serve_pid ]] || { kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; }
  rm -rf "$fixture"
}
trap cleanup EXIT
mkdir -p "$fixture/model/onnx"
head -c 3000000 /dev/urandom > "$fixture/model/onnx/model.onnx"
head -c 100000 /dev/urandom > "$fixture/model/onnx/corrupt.onnx"
printf '{"model_type": "bert"}\n' > "$fixture/model/config.json"
commit=$("$HUBCACHE_CLI" import "$fixture/model" --repo org/tiny --cache-dir "$fixture/served" -q | tail -n 1)
blob="$fixture/served/models--org--tiny/blobs/$(sha256sum < "$fixture/model/onnx/corrupt.onnx" | cut -d' ' -f1)"
last=$(tail -c 1 "$blob" | od -An -tu1 | tr -d ' ')
chmod u+w "$blob"
printf "\\$(printf '%03o' $((last ^ 1)))" | dd of="$blob" bs=1 seek=99999 conv=notrunc status=none

"$HUBCACHE_CLI" serve --port 0 --cache-dir "$fixture/served" > "$fixture/url" 2> "$fixture/serve.log" &
serve_pid=$!
for _ in $(seq 200); do
  [[ -s $fixture/url ]] && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$fixture/serve.log" >&2; exit 1; }
  sleep 0.1
done
url=$(head -n 1 "$fixture/url")
[[ $url == http://127.0.0.1:* ]] || { echo "hubcache serve printed no URL: $(cat "$fixture/serve.log")" >&2; exit 1; }

# hubcache reads these once, from the process environment: they must be set before the VM starts.
unset HF_HUB_OFFLINE TRANSFORMERS_OFFLINE HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_CACHE \
  HUGGINGFACE_HUB_CACHE XDG_CACHE_HOME
export HF_ENDPOINT="$url" HF_HOME="$fixture/hf-home" HUBCACHE_RETRY_BASE_MS=10 HUBCACHE_MAX_RETRIES=0
export HUBCACHE_TEST_FIXTURE="$fixture" HUBCACHE_TEST_COMMIT="$commit"

work="$HUBCACHE_BUILD_DIR/elixir"
mkdir -p "$work"
export MIX_ENV=test MIX_HOME="$work/mix" MIX_ARCHIVES="$work/mix/archives" HEX_HOME="$work/hex" HEX_OFFLINE=1
export MIX_BUILD_PATH="$work/_build/test" MIX_DEPS_PATH="$work/deps"
export HUBCACHE_CFLAGS="-I$HUBCACHE_SOURCE_DIR/include"
export HUBCACHE_LIBS="-L$HUBCACHE_BUILD_DIR -lhubcache -Wl,-rpath,$HUBCACHE_BUILD_DIR"
export HUBCACHE_NIF_CFLAGS="-Werror -pedantic"
cd "$HUBCACHE_SOURCE_DIR/bindings/elixir"
mix format --check-formatted
mix compile --warnings-as-errors
mix test --warnings-as-errors
