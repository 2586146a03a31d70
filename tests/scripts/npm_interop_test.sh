#!/usr/bin/env bash
# One cache for every tool, proven against a client written by others: the npm
# package @huggingface/hub (pinned in tests/interop/package-lock.json).
#
#  1. `hubcache import` a generated folder (nested paths, a 20 MB LFS file, small
#     files) and `hubcache serve --port 0` it;
#  2. @huggingface/hub's snapshotDownload and downloadFileToCacheDir (with the
#     commit as revision) fetch from it: every file byte-identical to the source;
#  3. hubcache reads the cache the JS client wrote, offline, and verifies it;
#  4. scanCacheDir reads the cache hubcache wrote: no warnings, right refs, sizes, files.
set -euo pipefail
: "${HUBCACHE_CLI:?}" "${HUBCACHE_BUILD_DIR:?}" "${HUBCACHE_SOURCE_DIR:?}"
unset HF_HUB_OFFLINE HF_ENDPOINT HF_TOKEN HF_HOME HF_HUB_CACHE HUGGINGFACE_HUB_CACHE

fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are needed (scripts/install-deps.sh --test installs them)"

# The peer client, installed from the lock file into the build dir (reused when the lock is unchanged).
js="$HUBCACHE_BUILD_DIR/interop"
mkdir -p "$js"
if ! cmp -s "$HUBCACHE_SOURCE_DIR/tests/interop/package-lock.json" "$js/package-lock.json" || [[ ! -d $js/node_modules ]]; then
  cp "$HUBCACHE_SOURCE_DIR/tests/interop/package.json" "$HUBCACHE_SOURCE_DIR/tests/interop/package-lock.json" "$js/"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci of @huggingface/hub failed"
fi
cp "$HUBCACHE_SOURCE_DIR/tests/interop/interop.mjs" "$js/"
peer() { node "$js/interop.mjs" "$@"; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# 1. A model folder: nested paths, a 20 MB LFS file, small files; and a dataset.
src="$work/src"
mkdir -p "$src/onnx" "$src/tokenizer" "$src/nested/deep/er"
printf '{"hidden_size": 8}\n' > "$src/config.json"
printf '# tiny\n' > "$src/README.md"
printf 'a\nb\nc\n' > "$src/tokenizer/vocab.txt"
printf 'deep\n' > "$src/nested/deep/er/notes.txt"
head -c 20000000 /dev/urandom > "$src/onnx/model.onnx"
mkdir -p "$work/ds/data" && printf 'x,y\n1,2\n' > "$work/ds/data/train.csv"

served="$work/served"
commit=$("$HUBCACHE_CLI" import "$src" --repo org/model --cache-dir "$served" -q | tail -n1)
[[ $commit =~ ^[0-9a-f]{40}$ ]] || fail "import printed '$commit', not a commit"
ds_commit=$("$HUBCACHE_CLI" import "$work/ds" --repo org/data --repo-type dataset --cache-dir "$served" -q | tail -n1)

"$HUBCACHE_CLI" serve --port 0 --cache-dir "$served" > "$work/serve.out" 2> "$work/serve.log" &
server_pid=$!
for _ in $(seq 100); do [[ -s $work/serve.out ]] && break; sleep 0.1; done
url=$(head -n1 "$work/serve.out")
[[ $url =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || fail "serve printed '$url' as its first line"

same_tree() {  # same_tree SNAPSHOT_DIR SOURCE_DIR: every source file byte-identical in the snapshot
  local snap=$1 from=$2 n=0
  while IFS= read -r -d '' f; do
    rel=${f#"$from"/}
    cmp -s "$f" "$snap/$rel" || fail "$rel differs or is missing in $snap"
    n=$((n + 1))
  done < <(find "$from" -type f -print0)
  echo "$n"
}

# 2. The JS client downloads from hubcache serve.
js_cache="$work/js-cache"
snap=$(peer snapshot "$url" org/model "$js_cache" | tail -n1)
[[ $snap == "$js_cache/models--org--model/snapshots/$commit" ]] || fail "snapshotDownload returned '$snap'"
n=$(same_tree "$snap" "$src")
[[ $n == 5 ]] || fail "expected 5 files, compared $n"
[[ $(cat "$js_cache/models--org--model/refs/main") == "$commit" ]] || fail "refs/main of the JS cache"
file=$(peer file "$url" org/model onnx/model.onnx "$commit" "$work/js-file" | tail -n1)
cmp -s "$file" "$src/onnx/model.onnx" || fail "downloadFileToCacheDir with the commit returned a different file"
dsnap=$(peer snapshot "$url" datasets/org/data "$js_cache" | tail -n1)
cmp -s "$dsnap/data/train.csv" "$work/ds/data/train.csv" || fail "dataset file differs"
echo "ok: @huggingface/hub downloaded $n files + a dataset from hubcache serve, byte-identical"

# 3. hubcache reads the JS-written cache offline (no server needed) and verifies every blob.
kill -STOP "$server_pid"  # any request would now hang: prove none is made
got=$(HF_HUB_OFFLINE=1 "$HUBCACHE_CLI" download org/model --cache-dir "$js_cache" -q | tail -n1)
[[ $got == "$snap" ]] || fail "hubcache offline resolved '$got', expected '$snap'"
got=$("$HUBCACHE_CLI" path org/model onnx/model.onnx --cache-dir "$js_cache")
cmp -s "$got" "$src/onnx/model.onnx" || fail "hubcache path in the JS cache"
"$HUBCACHE_CLI" verify org/model --cache-dir "$js_cache" >/dev/null || fail "hubcache verify of the JS cache"
"$HUBCACHE_CLI" ls --cache-dir "$js_cache" --format json > "$work/ls.json"
node -e '
  const ls = JSON.parse(require("fs").readFileSync(process.argv[1]));
  const repos = (ls.repos ?? ls).map((r) => r.repo_id ?? r.id);
  if (!repos.includes("org/model") || !repos.includes("org/data")) { console.error(JSON.stringify(ls)); process.exit(1); }
' "$work/ls.json" || fail "hubcache ls of the JS cache"
kill -CONT "$server_pid"
echo "ok: hubcache reads the cache @huggingface/hub wrote, offline, and verifies it"

# 4. hubcache fills a cache from the server; scanCacheDir reads it with no warnings.
#    (scanCacheDir of @huggingface/hub 2.17.5 skips folders inside a snapshot: only
#    top-level files are listed and counted. That is the peer's gap, checked as such.)
hc_cache="$work/hc-cache"
HF_ENDPOINT=$url "$HUBCACHE_CLI" download org/model --cache-dir "$hc_cache" -q >/dev/null
HF_ENDPOINT=$url "$HUBCACHE_CLI" download org/data --repo-type dataset --cache-dir "$hc_cache" -q >/dev/null
peer scan "$hc_cache" > "$work/scan.json"
node -e '
  const fs = require("fs");
  const [scanFile, commit, dsCommit, srcDir] = process.argv.slice(1);
  const scan = JSON.parse(fs.readFileSync(scanFile));
  const bad = (m) => { console.error(m + "\n" + JSON.stringify(scan, null, 1)); process.exit(1); };
  if (scan.warnings.length) bad("scanCacheDir warned: " + scan.warnings.join("; "));
  if (scan.repos.length !== 2) bad("expected 2 repos");
  const model = scan.repos.find((r) => r.id.name === "org/model" && r.id.type === "model");
  const data = scan.repos.find((r) => r.id.name === "org/data" && r.id.type === "dataset");
  if (!model || !data) bad("repo ids");
  if (model.revisions.length !== 1 || model.revisions[0].commitOid !== commit) bad("model commit");
  if (JSON.stringify(model.revisions[0].refs) !== JSON.stringify(["main"])) bad("model refs");
  if (data.revisions[0].commitOid !== dsCommit) bad("dataset commit");
  // @huggingface/hub lists only the top level of a snapshot (it skips folders), so
  // compare with the top-level files of the source; sizes are the blob sizes.
  const top = fs.readdirSync(srcDir, { withFileTypes: true }).filter((e) => e.isFile())
    .map((e) => ({ path: e.name, size: fs.statSync(srcDir + "/" + e.name).size }))
    .sort((a, b) => (a.path < b.path ? -1 : 1));
  if (JSON.stringify(model.revisions[0].files) !== JSON.stringify(top)) bad("model files " + JSON.stringify(top));
  // ... and so does its size: the sum of the blobs it listed.
  const total = top.reduce((n, f) => n + f.size, 0);
  if (model.size !== total || model.revisions[0].size !== total) bad("model size " + model.size + " != " + total);
' "$work/scan.json" "$commit" "$ds_commit" "$src" || fail "scanCacheDir of the hubcache cache"
echo "ok: scanCacheDir reads the cache hubcache wrote with no warnings, right refs, files and sizes"

# The access log has a line per request and the server stops cleanly.
grep -q "GET /api/models/org/model/tree/$commit" "$work/serve.log" || fail "access log lacks the tree request"
kill -TERM "$server_pid"
wait "$server_pid" || fail "serve exited with $? on SIGTERM"
server_pid=""
echo "PASS"
