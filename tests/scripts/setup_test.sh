#!/usr/bin/env bash
# The README's first command, scripts/setup.sh, works: it installs (a no-op when the
# packages are there), builds the CLI (here in the suite's own build folder, already
# up to date, so the test costs no compile), and downloads the default model into
# the cache. The Hub is replaced by `hubcache serve` through HF_ENDPOINT, as
# the README says, since tests talk only to 127.0.0.1.
set -euo pipefail
: "${HUBCACHE_CLI:?}" "${HUBCACHE_BUILD_DIR:?}" "${HUBCACHE_SOURCE_DIR:?}"
unset HF_HUB_OFFLINE HF_ENDPOINT HF_TOKEN HF_HOME HF_HUB_CACHE HUGGINGFACE_HUB_CACHE
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A stand-in for the seed's default repo: an ONNX model, its config and a README.
mkdir -p "$work/model"
head -c 3000000 /dev/urandom > "$work/model/model.onnx"
printf '{"architectures": ["Faulty"]}\n' > "$work/model/config.json"
printf '# image-faulty\n' > "$work/model/README.md"
commit=$("$HUBCACHE_CLI" import "$work/model" --repo xiaoyao9184/image-faulty --cache-dir "$work/hub" -q | tail -n1)
"$HUBCACHE_CLI" serve --port 0 --cache-dir "$work/hub" --no-access-log > "$work/url" 2>/dev/null &
server_pid=$!
for _ in $(seq 100); do [[ -s $work/url ]] && break; sleep 0.1; done
url=$(head -n1 "$work/url")

out=$(HF_ENDPOINT=$url HF_HOME="$work/home" HUBCACHE_SETUP_BUILD_DIR="$HUBCACHE_BUILD_DIR" \
      "$HUBCACHE_SOURCE_DIR/scripts/setup.sh" 2> "$work/setup.err") || { cat "$work/setup.err" >&2; fail "setup.sh exited $?"; }
snap="$work/home/hub/models--xiaoyao9184--image-faulty/snapshots/$commit"
# stdout is the snapshot path alone (build progress goes to stderr), so $(setup.sh) works.
[[ $out == "$snap" ]] || fail "setup.sh printed '$out' on stdout, expected only $snap"
for f in model.onnx config.json README.md; do
  cmp -s "$snap/$f" "$work/model/$f" || fail "$f differs after setup.sh"
done
grep -q "downloading xiaoyao9184/image-faulty from $url" "$work/setup.err" || fail "setup.sh did not say what it downloads"
echo PASS
