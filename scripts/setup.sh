#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install the packages, build hubcache,
# and download a model into the cache (the main job).
#
#   ./scripts/setup.sh [REPO [FILE...]]
#
# REPO defaults to the ONNX model of the project's first seed; set HF_ENDPOINT to
# use a mirror or a 'hubcache serve' on another machine, HF_TOKEN for private repos.
#
# Without REPO, on a machine that cannot reach the Hub (air-gapped, firewalled), it
# says so in one line and shows the same download working end to end against a
# local demo hub it makes (hubcache import, hubcache serve, hubcache download
# through HF_ENDPOINT, then an offline read), in a folder of its own under the build
# folder: the real cache is left alone. With REPO, an unreachable Hub is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build="${HUBCACHE_SETUP_BUILD_DIR:-build}"
# An existing build folder (say, the test suite's) is kept as it is configured.
[[ -f $build/CMakeCache.txt ]] ||
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBCACHE_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target hubcache_cli >&2  # progress on stderr: stdout is the path alone
hubcache="$build/hubcache"
default_repo=xiaoyao9184/image-faulty
endpoint="${HF_ENDPOINT:-https://huggingface.co}"
if (($# > 0)); then
  repo=$1
  shift
  echo "downloading ${repo} from ${endpoint} into the cache..." >&2
  exec "$hubcache" download "$repo" "$@"
fi

# No repo given: first a quick look at whether the Hub answers (one retry, no
# transfer), so that a machine without access gets the demo instead of an error.
repo=$default_repo
probe_err=$(mktemp)
probe=0
HUBCACHE_MAX_RETRIES=1 "$hubcache" download "$repo" --dry-run -q >/dev/null 2>"$probe_err" || probe=$?
if ((probe == 0)) || ! grep -q "Cannot reach the Hub" "$probe_err"; then
  if ((probe != 0)); then cat "$probe_err" >&2; rm -f "$probe_err"; exit "$probe"; fi
  rm -f "$probe_err"
  echo "downloading ${repo} from ${endpoint} into the cache..." >&2
  exec "$hubcache" download "$repo"
fi
cause=$(sed -n 's/.*Cannot reach the Hub at [^ ]* for [^:]*: \(.*\)\. Check your connection.*/\1/p' "$probe_err" | head -n1)
rm -f "$probe_err"
# A copy the cache already holds is still the answer (hubcache falls back to it).
if cached=$(HF_HUB_OFFLINE=1 "$hubcache" download "$repo" -q 2>/dev/null); then
  echo "${endpoint} cannot be reached from this machine (${cause:-no answer}); ${repo} is already in the cache:" >&2
  echo "$cached"
  exit 0
fi
echo "${endpoint} cannot be reached from this machine (${cause:-no answer}), so the same download runs against a local demo hub instead." >&2

# The demo: a small generated repo, imported into a cache that `hubcache serve`
# shares, downloaded from it through HF_ENDPOINT into a second cache, then read
# back offline. No token goes to the demo server; the user's cache is not touched.
demo="$build/setup-demo"
rm -rf "$demo"
mkdir -p "$demo/files"
demo_repo=hubcache-demo/image-faulty
head -c 1048576 /dev/urandom > "$demo/files/model.onnx"
printf '{"architectures": ["Demo"]}\n' > "$demo/files/config.json"
printf '# %s\n\nA generated stand-in for %s, made by scripts/setup.sh.\n' "$demo_repo" "$repo" > "$demo/files/README.md"
demo_env=(env -u HF_TOKEN -u HUGGING_FACE_HUB_TOKEN -u HF_TOKEN_PATH -u HF_HUB_OFFLINE -u HF_HUB_CACHE
          -u HUGGINGFACE_HUB_CACHE HF_HOME="$demo/home")
server_pid=""
stop_server() {
  if [[ -n $server_pid ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT
"${demo_env[@]}" "$hubcache" import "$demo/files" --repo "$demo_repo" --cache-dir "$demo/hub" -q >/dev/null
"${demo_env[@]}" "$hubcache" serve --port 0 --cache-dir "$demo/hub" --no-access-log > "$demo/url" 2>"$demo/serve.log" &
server_pid=$!
for _ in $(seq 100); do
  [[ -s $demo/url ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
url=$(head -n1 "$demo/url")
[[ $url == http://* ]] || { cat "$demo/serve.log" >&2; echo "error: the demo hub did not start" >&2; exit 1; }
echo "demo hub: ${url} (hubcache serve of a generated ${demo_repo}); downloading it through HF_ENDPOINT..." >&2
path=$("${demo_env[@]}" HF_ENDPOINT="$url" "$hubcache" download "$demo_repo")
for f in model.onnx config.json README.md; do
  cmp -s "$path/$f" "$demo/files/$f" || { echo "error: the demo download of $f differs from the original" >&2; exit 1; }
done
offline=$("${demo_env[@]}" HF_HUB_OFFLINE=1 "$hubcache" download "$demo_repo" model.onnx)
[[ $offline == "$path/model.onnx" ]] || { echo "error: the offline read gave '$offline'" >&2; exit 1; }
stop_server
trap - EXIT
echo "the demo worked: downloaded (verified) through HF_ENDPOINT, then read back with HF_HUB_OFFLINE=1 and no server." >&2
echo "Once ${endpoint} is reachable (or HF_ENDPOINT names a mirror or a 'hubcache serve' that is), run ./scripts/setup.sh again, or: ${hubcache} download ${repo}" >&2
echo "$path"
