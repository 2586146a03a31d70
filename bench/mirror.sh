#!/usr/bin/env bash
# A simulated site (docs/benchmarks.md, "A site mirror"): N clients pull one large
# file from an upstream Hub whose CDN is capped in total bandwidth (the site's link),
# once straight from the upstream and once through `hubcache serve --upstream`.
# Reports, for each: the time until every client is done, the bytes that crossed the
# upstream link, and the clients' time to first byte; then the ratios.
#
#   bench/mirror.sh [--clients N] [--mib N] [--upstream-mibps N] [--build-dir DIR]
#                   [--out DIR] [--no-build] [--keep]
#
#   --clients N        concurrent clients (default 32)
#   --mib N            file size in MiB (default 1024)
#   --upstream-mibps N the upstream CDN's total bandwidth, MiB/s (default 200)
#   --build-dir DIR    Release build folder (default build-bench)
#   --out DIR          results folder (default <build dir>/bench-results): mirror.tsv, mirror.md
#   --no-build         use the binaries already built
#   --keep             keep the temp folder (caches, logs)
#
# The upstream is the test suite's fault server (tests/tools/fault_hub, built here as
# bench_fault_hub) with one LFS file; the clients are curl processes following the
# Hub's redirect (-L) and writing to /dev/null, so the machine measures transfers, not
# 32 copies of a file on disk. Figures that matter are taken holding the CPU lock:
#   flock -x /tmp/hubcache-cpu.lock bench/mirror.sh
set -Eeuo pipefail
shopt -s inherit_errexit
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
source_dir=$(pwd)

clients=32 mib=1024 cap_mibps=200 build="build-bench" out="" do_build=1 keep=0
while (($#)); do
  case "$1" in
    --clients) clients=$2; shift ;;
    --mib) mib=$2; shift ;;
    --upstream-mibps) cap_mibps=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --out) out=$2; shift ;;
    --no-build) do_build=0 ;;
    --keep) keep=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $clients =~ ^[1-9][0-9]*$ && $mib =~ ^[1-9][0-9]*$ && $cap_mibps =~ ^[1-9][0-9]*$ ]] ||
  { echo "bench: --clients, --mib and --upstream-mibps need positive numbers" >&2; exit 2; }
[[ -n $out ]] || out="$build/bench-results"

log() { printf '%s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
calc() { awk "BEGIN {printf \"%.${2:-3}f\", $1}"; }
for tool in curl jq; do command -v "$tool" >/dev/null || die "'$tool' is missing: run scripts/install-deps.sh --bench"; done

if ((do_build)); then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBCACHE_BUILD_BENCH=ON -DHUBCACHE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" --target hubcache_cli bench_fault_hub -j"${BENCH_JOBS:-$(nproc)}" >/dev/null
fi
hc="$(cd "$build" && pwd)/hubcache"
hub_bin="$(cd "$build" && pwd)/bench/bench_fault_hub"
[[ -x $hc && -x $hub_bin ]] || die "no $hc or $hub_bin: build with -DHUBCACHE_BUILD_BENCH=ON (drop --no-build)"

unset HF_HUB_OFFLINE HF_ENDPOINT HF_TOKEN HF_HOME HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_TOKEN_PATH
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hubcache-mirror-bench.XXXXXX")
hub_pid="" mirror_pid=""
cleanup() {
  for pid in $mirror_pid $hub_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  if ((keep)); then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

wait_line() {  # FILE: the first line once it is there (up to 60 s)
  for _ in $(seq 1200); do
    if [[ -s $1 ]]; then head -1 "$1"; return 0; fi
    sleep 0.05
  done
  return 1
}

bytes=$((mib << 20))
cap=$((cap_mibps << 20))
log "upstream: one ${mib} MiB LFS file, its CDN capped at ${cap_mibps} MiB/s in total; $clients clients"
"$hub_bin" --repo org/model --file "model.safetensors:$bytes:lfs" --file config.json:600 --cdn-bps "$cap" \
  >"$work/hub.out" 2>"$work/hub.log" &
hub_pid=$!
read -r hub_url _ < <(wait_line "$work/hub.out") || die "the fault hub did not start: $(cat "$work/hub.log")"

# run_clients NAME BASE_URL: N curl clients at once; prints "wall upstream_bytes ttfb_min ttfb_median ttfb_max"
run_clients() {
  local name=$1 base=$2 i t0 t1
  curl -s "$hub_url/_fault/reset" >/dev/null
  mkdir -p "$work/$name"
  sync
  t0=$EPOCHREALTIME
  for ((i = 0; i < clients; i++)); do
    curl -sfL -o /dev/null -w '%{time_starttransfer} %{time_total} %{size_download}\n' \
      "$base/org/model/resolve/main/model.safetensors" >"$work/$name/$i.txt" 2>"$work/$name/$i.err" &
  done
  wait
  t1=$EPOCHREALTIME
  local bad
  bad=$(awk -v b="$bytes" '$3 != b {n++} END {print n + 0}' "$work/$name"/*.txt)
  ((bad == 0)) || die "$name: $bad client(s) did not get all $bytes bytes"
  local upstream ttfb
  upstream=$(curl -s "$hub_url/_fault/stats" | jq -r .cdn_bytes)
  ttfb=$(cat "$work/$name"/*.txt | awk '{print $1}' | sort -g)
  printf '%s %s %s %s %s\n' "$(calc "$t1 - $t0" 2)" "$upstream" "$(head -1 <<<"$ttfb")" \
    "$(awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}' <<<"$ttfb")" "$(tail -1 <<<"$ttfb")"
}

log "straight from the upstream..."
read -r d_wall d_up d_tmin d_tmed d_tmax < <(run_clients direct "$hub_url")

log "through hubcache serve --upstream (cold cache)..."
"$hc" serve --upstream "$hub_url" --port 0 --cache-dir "$work/mirror-cache" --no-access-log \
  >"$work/mirror.out" 2>"$work/mirror.log" &
mirror_pid=$!
mirror_url=$(wait_line "$work/mirror.out") || die "the mirror did not start: $(cat "$work/mirror.log")"
read -r m_wall m_up m_tmin m_tmed m_tmax < <(run_clients mirror "$mirror_url")
curl -s "$mirror_url/metrics" >"$out/mirror-metrics.txt" || true

ideal=$(calc "$bytes / $cap" 2)
{
  printf 'scenario\tclients\tfile_bytes\tall_done_s\tupstream_bytes\tupstream_x_file\tttfb_min_s\tttfb_median_s\tttfb_max_s\n'
  printf 'direct\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$clients" "$bytes" "$d_wall" "$d_up" "$(calc "$d_up / $bytes" 2)" "$d_tmin" "$d_tmed" "$d_tmax"
  printf 'mirror\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$clients" "$bytes" "$m_wall" "$m_up" "$(calc "$m_up / $bytes" 2)" "$m_tmin" "$m_tmed" "$m_tmax"
} >"$out/mirror.tsv"
{
  echo "| $clients clients, ${mib} MiB, upstream ${cap_mibps} MiB/s | all done | upstream bytes | time to first byte (min / median / max) |"
  echo "|---|---|---|---|"
  echo "| straight from upstream | ${d_wall} s | $(calc "$d_up / $bytes" 2)x the file | ${d_tmin} / ${d_tmed} / ${d_tmax} s |"
  echo "| through \`hubcache serve --upstream\` | ${m_wall} s | $(calc "$m_up / $bytes" 2)x the file | ${m_tmin} / ${m_tmed} / ${m_tmax} s |"
  echo
  echo "All done $(calc "$d_wall / $m_wall" 1)x sooner through the mirror; $(calc "$d_up / ($m_up > 0 ? $m_up : 1)" 1)x fewer upstream bytes. One transfer of the file over the capped link takes ${ideal} s."
} >"$out/mirror.md"
cat "$out/mirror.md"
