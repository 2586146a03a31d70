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

# A machine that cannot reach the Hub (this one cannot reach huggingface.co, but the
# test must not depend on that): HF_ENDPOINT names a port where nothing listens, the
# one the server above had before it stopped.
kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
server_pid=""
closed=$url
demo="$HUBCACHE_BUILD_DIR/setup-demo"
trap 'cleanup; rm -rf "$demo"' EXIT
run_setup() {  # run_setup NAME [ARGS...]: stdout to $work/NAME.out, stderr to $work/NAME.err, exit code echoed
  local name=$1 rc=0
  shift
  HF_ENDPOINT=$closed HF_HOME="$work/home2" HUBCACHE_SETUP_BUILD_DIR="$HUBCACHE_BUILD_DIR" HUBCACHE_RETRY_BASE_MS=10 \
    "$HUBCACHE_SOURCE_DIR/scripts/setup.sh" "$@" > "$work/$name.out" 2> "$work/$name.err" || rc=$?
  echo "$rc"
}

# No repo given: one plain line says so, then the same download runs end to end against
# a demo hub that setup.sh makes and stops; stdout is the downloaded snapshot's path.
rc=$(run_setup demo)
[[ $rc == 0 ]] || { cat "$work/demo.err" >&2; fail "setup.sh without network exited $rc"; }
grep -q "^$closed cannot be reached from this machine (Couldn't connect to server), so the same download runs against a local demo hub instead.$" \
  "$work/demo.err" || { cat "$work/demo.err" >&2; fail "no plain line saying the Hub cannot be reached"; }
grep -q "^error" "$work/demo.err" && { cat "$work/demo.err" >&2; fail "the demo path printed an error"; }
out=$(cat "$work/demo.out")
[[ $out == "$demo"/home/hub/models--hubcache-demo--image-faulty/snapshots/* ]] || fail "setup.sh printed '$out'"
for f in model.onnx config.json README.md; do
  cmp -s "$out/$f" "$demo/files/$f" || fail "demo $f differs from what was served"
done
[[ $(readlink "$out/model.onnx") == ../../blobs/* ]] || fail "the demo download is not a hub cache entry"
demo_url=$(sed -n 's/^demo hub: \(http:[^ ]*\) .*/\1/p' "$work/demo.err")
[[ $demo_url == http://127.0.0.1:* ]] || fail "setup.sh did not say where the demo hub ran"
port=${demo_url##*:}
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then fail "the demo hub still listens on $demo_url"; fi
grep -q "run ./scripts/setup.sh again, or: .*hubcache download xiaoyao9184/image-faulty" "$work/demo.err" ||
  fail "setup.sh did not say how to run the real download later"
grep -q "HF_HUB_OFFLINE=1" "$work/demo.err" || fail "setup.sh did not say the offline read worked"
[[ ! -e $work/home2/hub ]] || fail "the demo wrote into the user's cache: $(ls "$work/home2/hub")"

# An explicit repo: an unreachable Hub stays an error, and the message says what was
# tried, where the cache is, and the two ways forward.
rc=$(run_setup explicit xiaoyao9184/image-faulty)
[[ $rc == 3 ]] || { cat "$work/explicit.err" >&2; fail "setup.sh with a repo exited $rc without network, expected 3"; }
[[ ! -s $work/explicit.out ]] || fail "setup.sh with a repo printed '$(cat "$work/explicit.out")' on failure"
for part in "Cannot reach the Hub at $closed (HF_ENDPOINT): Couldn't connect to server" \
            "not in the cache at $work/home2/hub" "HTTPS_PROXY" "mirror" "copy that cache to $work/home2/hub" \
            "hubcache serve" '`hubcache download xiaoyao9184/image-faulty`'; do
  grep -qF "$part" "$work/explicit.err" || { cat "$work/explicit.err" >&2; fail "the error does not say: $part"; }
done
grep -q "demo" "$work/explicit.err" && fail "setup.sh with a repo ran the demo"
echo PASS
