#!/usr/bin/env bash
# hubcache against its peers, on this machine, in one go (docs/benchmarks.md).
#
#   bench/run.sh [--quick] [--cold-only] [--runs N] [--connections N] [--rate R] [--build-dir DIR]
#                [--out DIR] [--keep] [--no-install] [--no-build]
#
# Installs what it needs (scripts/install-deps.sh --bench), builds hubcache in Release
# in its own build folder (default build-bench) with the Google Benchmark programs,
# generates the data in a temp folder under $TMPDIR (about 2.5 GB; the downloads land there,
# so put it on the disk to measure, not a tmpfs), starts nginx and `hubcache serve` on 127.0.0.1
# ephemeral ports, runs every comparison, and prints the figures, the ratios and
# PASS/MISS for each target of issue 7. The output folder (default
# <build dir>/bench-results) gets results.tsv, targets.tsv, results.md, machine.txt,
# benchmarks.svg and the raw hyperfine / Google Benchmark JSON.
#
#   --quick          smaller sizes and one run each (a smoke run; targets are meant for the full sizes)
#   --cold-only      only the cold download and its physical limit (a minute; for repeated runs)
#   --runs N         repetitions of each cold download (median reported; default 3, quick 1)
#   --connections N  passed to `hubcache download --connections` when the CLI has that flag (default 8)
#   --rate R         nginx limit_rate per connection for the capped comparison (default 16m = 16 MiB/s)
#   --keep           keep the temp folder (data, caches, server logs) and print where it is
#   --no-install     do not run scripts/install-deps.sh --bench
#   --no-build       use the binaries already in the build folder
set -Eeuo pipefail
shopt -s inherit_errexit
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."
source_dir=$(pwd)

quick=0 cold_only=0 runs="" conns=8 rate=16m build="build-bench" out="" keep=0 install=1 do_build=1
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --cold-only) cold_only=1 ;;
    --runs) runs=$2; shift ;;
    --connections) conns=$2; shift ;;
    --rate) rate=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --out) out=$2; shift ;;
    --keep) keep=1 ;;
    --no-install) install=0 ;;
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[0-9]*$ && $conns =~ ^[1-9][0-9]*$ && $rate =~ ^[1-9][0-9]*[km]?$ ]] ||
  { echo "bench: --runs, --connections need positive numbers, --rate a size like 16m" >&2; exit 2; }

if ((quick)); then
  big_mib=128 cap_mib=32 many=200 scan_repos=20 scan_per_repo=100 cli_runs=10
  runs=${runs:-1}
else
  big_mib=1024 cap_mib=128 many=1000 scan_repos=100 scan_per_repo=100 cli_runs=30
  runs=${runs:-3}
fi
((runs >= 1)) || runs=1
[[ -n $out ]] || out="$build/bench-results"

log() { printf '%s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
section() { printf '\n== %s\n' "$*" >&2; }

# ---- packages and build ------------------------------------------------------------------
if ((install)); then scripts/install-deps.sh --bench; fi
for tool in nginx aria2c curl hyperfine gnuplot node npm jq /usr/bin/time; do
  command -v "$tool" >/dev/null || die "'$tool' is missing: run scripts/install-deps.sh --bench"
done
if ((do_build)); then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBCACHE_BUILD_BENCH=ON -DHUBCACHE_BUILD_TESTS=OFF \
    "${launcher[@]}" >/dev/null
  cmake --build "$build" -j"${BENCH_JOBS:-$(nproc)}" >/dev/null
fi
[[ -d $build ]] || die "no build folder '$build' (drop --no-build)"
hc="$(cd "$build" && pwd)/hubcache"
bench_fetch="$(cd "$build" && pwd)/bench/bench_fetch"
[[ -x $hc && -x $bench_fetch ]] || die "no $hc or $bench_fetch: build with -DHUBCACHE_BUILD_BENCH=ON (drop --no-build)"

# The peer client, from the interop test's lock file (the same pinned @huggingface/hub).
js="$(cd "$build" && pwd)/bench-js"
mkdir -p "$js"
if ! cmp -s tests/interop/package-lock.json "$js/package-lock.json" || [[ ! -d $js/node_modules ]]; then
  cp tests/interop/package.json tests/interop/package-lock.json "$js/"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci of @huggingface/hub failed"
fi
cp bench/peer.mjs "$js/"
peer() { node "$js/peer.mjs" "$@"; }
hfjs_version=$(node -p "require('$js/node_modules/@huggingface/hub/package.json').version")

# ---- work folder, servers, cleanup -------------------------------------------------------
unset HF_HUB_OFFLINE HF_ENDPOINT HF_TOKEN HF_HOME HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_TOKEN_PATH
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hubcache-bench.XXXXXX")
chmod 755 "$work"
nginx_pid="" serve_pid=""
cleanup() {
  for pid in $nginx_pid $serve_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  if ((keep)); then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
: >"$out/results.tsv"

# record SECTION NAME VALUE UNIT
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$out/results.tsv"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.6f\n", (a[NR/2]+a[NR/2+1])/2}'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -1; }
calc() { awk "BEGIN {printf \"%.${2:-3}f\", $1}"; }

# run_timed LABEL CMD...: runs CMD once after a sync (so the last run's dirty pages do
# not slow this one) under GNU time; sets $wall (seconds), $cpu (user + system seconds,
# which other load on the machine disturbs far less than wall time) and $rss (peak RSS, KiB).
run_timed() {
  local label=$1 t0 t1
  shift
  sync
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -v -o "$work/$label.time" "$@" >"$work/$label.out" 2>"$work/$label.err"; then
    tail -5 "$work/$label.err" >&2
    die "$label failed: $*"
  fi
  t1=$EPOCHREALTIME
  wall=$(calc "$t1 - $t0" 4)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$label.time")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.3f", s}' "$work/$label.time")
}

# hyperfine_median JSON INDEX: the median seconds of one command of a hyperfine export.
hyperfine_median() { jq -r ".results[$2].median" "$1"; }
# hyperfine_cpu JSON INDEX: mean user + system seconds of one command.
hyperfine_cpu() { jq -r ".results[$2] | .user + .system" "$1"; }

free_port() { peer free-port; }

wait_for_file_line() {  # FILE: waits (up to 10 s) until FILE has a first line, prints it
  for _ in $(seq 200); do
    if [[ -s $1 ]]; then head -1 "$1"; return 0; fi
    sleep 0.05
  done
  return 1
}

# ---- the machine -------------------------------------------------------------------------
disk_dev=$(df --output=source "$work" | tail -1)
{
  echo "date:        $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit:      $(git -C "$source_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$source_dir" diff --quiet 2>/dev/null || echo ' (with local changes)')"
  echo "cpu:         $(lscpu | sed -n 's/^Model name: *//p' | head -1) ($(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1 | sed 's/.\+/& guest/'))"
  echo "cores:       $(nproc) online ($(lscpu | sed -n 's/^Thread(s) per core: *//p') thread(s) per core)"
  echo "ram:         $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel:      $(uname -sr)"
  echo "os:          $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "disk:        $(df --output=fstype "$work" | tail -1 | tr -d ' ') on $disk_dev ($(lsblk -dno ROTA "$disk_dev" 2>/dev/null | tr -d ' ' | sed 's/^1$/reported rotational/;s/^0$/non-rotational/')), $(df -h --output=avail "$work" | tail -1 | tr -d ' ') free"
  echo "load:        $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at start"
  echo "hubcache:    $("$hc" --version 2>&1 | head -1), Release, $(c++ --version | head -1)"
  echo "libcurl:     $(curl --version | head -1 | grep -o 'libcurl/[^ ]*')"
  echo "curl:        $(curl --version | head -1 | cut -d' ' -f1-2)"
  echo "aria2c:      $(aria2c --version | head -1)"
  echo "nginx:       $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  echo "node:        $(node --version), @huggingface/hub $hfjs_version"
  echo "hyperfine:   $(hyperfine --version)"
  echo "benchmark:   Google Benchmark $(dpkg-query -W -f='${Version}' libbenchmark-dev 2>/dev/null || echo unknown)"
  echo "gnuplot:     $(gnuplot --version)"
} >"$out/machine.txt"
section "machine"
cat "$out/machine.txt" >&2

has_conns=0 conn_flag=()
if "$hc" download --help 2>&1 | grep -q -- '--connections'; then
  has_conns=1 conn_flag=(--connections "$conns")
  log "hubcache download has --connections: using --connections $conns"
else
  log "hubcache download has no --connections flag: one stream per file (the engine before ranged downloads)"
fi
if ((quick)); then log "quick mode: smaller sizes, $runs run(s); the targets are stated for the full sizes"; fi
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
  log "warning: load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores: other work shares the CPUs, the figures are pessimistic"
fi

# ---- data and nginx ----------------------------------------------------------------------
section "data"
mkdir -p "$work/cdn" "$work/nginx/tmp"
# Pseudo-random, incompressible bytes: AES-CTR of zeros (fast with AES-NI, same bytes every run).
make_blob() {  # MIB SEED -> prints the sha256; the file is cdn/<sha256>
  local tmp="$work/cdn/new"
  { openssl enc -aes-128-ctr -nosalt -pbkdf2 -pass "pass:$2" </dev/zero 2>/dev/null || true; } | head -c $(($1 << 20)) >"$tmp"
  local sha
  sha=$(openssl dgst -sha256 -r "$tmp" | cut -c1-64)
  mv "$tmp" "$work/cdn/$sha"
  echo "$sha"
}
big_sha=$(make_blob "$big_mib" hubcache-big)
cap_sha=$(make_blob "$cap_mib" hubcache-capped)
big_bytes=$((big_mib << 20)) cap_bytes=$((cap_mib << 20))
fake_commit() { printf '%s' "$1" | openssl dgst -sha1 -r | cut -c1-40; }
big_commit=$(fake_commit big) cap_commit=$(fake_commit capped)
log "big.bin: $big_mib MiB sha256 $big_sha; capped.bin: $cap_mib MiB sha256 $cap_sha"

port=$(free_port)
user_line=""
[[ $(id -u) -eq 0 ]] && user_line="user root;"
# One nginx is the CDN for every client: files by sha256 under /cdn/ (unthrottled) and
# /capped/ (limit_rate per connection). It is also the Hub front for these two files:
# `location =` blocks answer /resolve/ with the Hub's 302 and X-Linked-* headers, so
# hubcache, curl -L and aria2c all start from the same resolve URL.
hub_front() {  # REPO FILE SHA SIZE COMMIT CDN_PREFIX
  cat <<EOF
    location = /$1/resolve/main/$2 {
      add_header X-Repo-Commit $5 always;
      add_header X-Linked-Etag '"$3"' always;
      add_header X-Linked-Size $4 always;
      add_header Accept-Ranges bytes always;
      return 302 http://127.0.0.1:$port/$6/$3;
    }
EOF
}
cat >"$work/nginx/nginx.conf" <<EOF
$user_line
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 10000;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    location /cdn/ { alias $work/cdn/; }
    location /capped/ { alias $work/cdn/; limit_rate $rate; }
$(hub_front bench/big big.bin "$big_sha" "$big_bytes" "$big_commit" cdn)
$(hub_front bench/capped capped.bin "$cap_sha" "$cap_bytes" "$cap_commit" capped)
  }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -t 2>"$work/nginx/test.log" || { cat "$work/nginx/test.log" >&2; die "bad nginx config"; }
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/cdn/$cap_sha" -r 0-0 && break; sleep 0.05; done
curl -sf -o /dev/null -r 0-0 "http://127.0.0.1:$port/cdn/$cap_sha" || die "nginx did not start (see $work/nginx/error.log)"
cdn="http://127.0.0.1:$port"

# ---- 1. cold 1 GiB, unthrottled ----------------------------------------------------------
section "cold $big_mib MiB LFS file, unthrottled loopback (median of $runs)"
big_url="$cdn/bench/big/resolve/main/big.bin"
declare -A cold_wall cold_rss cold_cpu
clients=(hubcache curl dd+fsync dd16k+fsync curl+fsync curl+sha256sum aria2c)
# The physical limit of a durable download on this machine, measured in the same run:
# the network alone (curl into the page cache) and the disk alone (dd of the same bytes,
# from the page cache, with conv=fsync) each take some time; a download that is written
# durably cannot beat the slower of the two. hubcache is compared with it run by run.
# dd runs twice, with 1 MiB and with 16 KiB writes, and the faster counts: on a VM whose
# free memory goes back to the host (virtio-balloon free page reporting), 1 MiB writes
# get large page-cache folios made of just-returned memory, and every first touch of it
# is a host page fault; 16 KiB writes, like libcurl's (and so curl's and hubcache's),
# mostly do not. The faster dd is the disk's figure: the stricter limit.
cold_limit=() cold_limit_ratio=()
for ((r = 1; r <= runs; ++r)); do
  rm -rf "$work/dl" && mkdir -p "$work/dl"
  run_timed "cold-hubcache-$r" env HF_ENDPOINT="$cdn" "$hc" download bench/big big.bin --cache-dir "$work/dl/hc" -q "${conn_flag[@]}"
  got=$(tail -1 "$work/cold-hubcache-$r.out")
  [[ $(basename "$(readlink -f "$got")") == "$big_sha" && $(stat -Lc %s "$got") == "$big_bytes" ]] ||
    die "hubcache did not put big.bin in the cache ($got)"
  cold_wall[hubcache]+=" $wall" cold_rss[hubcache]+=" $rss" cold_cpu[hubcache]+=" $cpu"
  rm -rf "$work/dl/hc"

  run_timed "cold-curl-$r" curl -sS -f -L -o "$work/dl/curl.bin" "$big_url"
  cold_wall[curl]+=" $wall" cold_rss[curl]+=" $rss" cold_cpu[curl]+=" $cpu"
  ((r > 1)) || cmp "$work/dl/curl.bin" "$work/cdn/$big_sha" || die "curl fetched other bytes"
  rm -f "$work/dl/curl.bin"
  curl_wall=$wall

  run_timed "cold-ddfsync-$r" dd if="$work/cdn/$big_sha" of="$work/dl/dd.bin" bs=1M conv=fsync status=none
  cold_wall[dd+fsync]+=" $wall" cold_rss[dd+fsync]+=" $rss" cold_cpu[dd+fsync]+=" $cpu"
  rm -f "$work/dl/dd.bin"
  dd_wall=$wall
  run_timed "cold-dd16kfsync-$r" dd if="$work/cdn/$big_sha" of="$work/dl/dd.bin" bs=16K conv=fsync status=none
  cold_wall[dd16k+fsync]+=" $wall" cold_rss[dd16k+fsync]+=" $rss" cold_cpu[dd16k+fsync]+=" $cpu"
  rm -f "$work/dl/dd.bin"
  limit=$(maximum "$curl_wall" "$(printf '%s\n' "$dd_wall" "$wall" | sort -g | head -1)")
  hc_wall=$(echo "${cold_wall[hubcache]}" | awk '{print $NF}')
  cold_limit+=("$limit") cold_limit_ratio+=("$(calc "$hc_wall / $limit")")

  # hubcache fsyncs the blob before it enters the cache; this is curl paying the same.
  run_timed "cold-curlfsync-$r" bash -c 'curl -sS -f -L -o "$1" "$2" && sync "$1"' _ "$work/dl/curl.bin" "$big_url"
  cold_wall[curl+fsync]+=" $wall" cold_rss[curl+fsync]+=" $rss" cold_cpu[curl+fsync]+=" $cpu"
  rm -f "$work/dl/curl.bin"

  # What a careful script does: download, then check the sha256 (coreutils). Slow and
  # only for reference: once.
  ((r == 1)) && run_timed "cold-curlsha-$r" bash -c 'curl -sS -f -L -o "$1" "$2" && echo "$3  $1" | sha256sum -c --status' _ \
    "$work/dl/curl.bin" "$big_url" "$big_sha"
  ((r == 1)) && cold_wall[curl+sha256sum]+=" $wall" cold_rss[curl+sha256sum]+=" $rss" cold_cpu[curl+sha256sum]+=" $cpu"
  rm -f "$work/dl/curl.bin"

  run_timed "cold-aria2c-$r" aria2c -q -x8 -s8 --min-split-size=1M --file-allocation=falloc \
    --allow-overwrite=true --auto-file-renaming=false -d "$work/dl" -o aria.bin "$big_url"
  cold_wall[aria2c]+=" $wall" cold_rss[aria2c]+=" $rss" cold_cpu[aria2c]+=" $cpu"
  ((r > 1)) || cmp "$work/dl/aria.bin" "$work/cdn/$big_sha" || die "aria2c fetched other bytes"
  rm -f "$work/dl/aria.bin"
done
: >"$out/cold.dat"
for c in "${clients[@]}"; do
  # shellcheck disable=SC2086
  w=$(median ${cold_wall[$c]}) m=$(maximum ${cold_rss[$c]}) u=$(median ${cold_cpu[$c]})
  record cold "$c wall" "$w" s
  record cold "$c CPU (user + system)" "$u" s
  record cold "$c throughput" "$(calc "$big_bytes / $w / 1e6" 0)" MB/s
  record cold "$c peak RSS" "$(calc "$m / 1024" 1)" MiB
  printf '"%s" %s %s\n' "${c//+/\\n+}" "$w" "$(calc "$m / 1024" 1)" >>"$out/cold.dat"
  printf '  %-15s %8.3f s  %6.0f MB/s  CPU %6.2f s  peak RSS %6.1f MiB   (runs:%s)\n' "$c" "$w" \
    "$(calc "$big_bytes / $w / 1e6" 0)" "$u" "$(calc "$m / 1024" 1)" "${cold_wall[$c]}" >&2
done
hc_cold=$(median ${cold_wall[hubcache]}) curl_cold=$(median ${cold_wall[curl]})
cold_ratio=$(calc "$hc_cold / $curl_cold")
limit_cold=$(median "${cold_limit[@]}")
# The target's figure pairs each hubcache run with the limit measured right after it
# (the machine's speed drifts between runs) and takes the median of those ratios.
limit_ratio=$(calc "$(median "${cold_limit_ratio[@]}")")
record cold "physical limit: max(curl, fastest dd+fsync) wall" "$limit_cold" s
record cold "hubcache / physical limit (median of the runs' ratios)" "$limit_ratio" x
record cold "hubcache / physical limit (median wall / median limit)" "$(calc "$hc_cold / $limit_cold")" x
record cold "hubcache / physical limit, run by run" "$(printf '%s ' "${cold_limit_ratio[@]}" | sed 's/ $//')" x
cold_rss_mib=$(calc "$(maximum ${cold_rss[hubcache]}) / 1024" 1)
record cold "hubcache / curl wall" "$cold_ratio" x
record cold "hubcache / (curl + fsync) wall" "$(calc "$hc_cold / $(median ${cold_wall[curl+fsync]})")" x
record cold "hubcache / (curl + sha256sum) wall" "$(calc "$hc_cold / $(median ${cold_wall[curl+sha256sum]})")" x
record cold "hubcache / aria2c wall" "$(calc "$hc_cold / $(median ${cold_wall[aria2c]})")" x
# Where hubcache's time goes: sha256 of the same bytes alone (OpenSSL, page cache).
t0=$EPOCHREALTIME; openssl dgst -sha256 "$work/cdn/$big_sha" >/dev/null; t1=$EPOCHREALTIME
record cold "sha256 of the file alone (openssl)" "$(calc "$t1 - $t0" 3)" s
log "  hubcache / physical limit = ${limit_ratio}x (runs: ${cold_limit_ratio[*]}); hubcache / curl = ${cold_ratio}x; sha256 alone takes $(calc "$t1 - $t0" 3) s"

if ((cold_only)); then
  : >"$out/targets.tsv"
  printf '%s\t%s\t%s\t%s\t%s\n' "cold ${big_mib} MiB: hubcache wall / physical limit" "$limit_ratio" "<= 1.15" x \
    "$(awk -v v="$limit_ratio" 'BEGIN {print v <= 1.15 ? "PASS" : "MISS"}')" >>"$out/targets.tsv"
  section "figures (--cold-only)"
  column -t -s $'\t' "$out/results.tsv" >&2
  section "target"
  cat "$out/targets.tsv" >&2
  exit 0
fi

# ---- 2. the CDN caps each connection -----------------------------------------------------
section "capped CDN: limit_rate $rate per connection, $cap_mib MiB file (one run each)"
cap_url="$cdn/bench/capped/resolve/main/capped.bin"
rm -rf "$work/dl" && mkdir -p "$work/dl"
run_timed cap-hubcache env HF_ENDPOINT="$cdn" "$hc" download bench/capped capped.bin --cache-dir "$work/dl/hc" -q "${conn_flag[@]}"
got=$(tail -1 "$work/cap-hubcache.out")
[[ $(basename "$(readlink -f "$got")") == "$cap_sha" ]] || die "hubcache did not cache capped.bin"
cap_hc=$wall cap_hc_cpu=$cpu
rm -rf "$work/dl/hc"
run_timed cap-curl curl -sS -f -L -o "$work/dl/curl.bin" "$cap_url"
cap_curl=$wall cap_curl_cpu=$cpu
cmp "$work/dl/curl.bin" "$work/cdn/$cap_sha" || die "curl fetched other bytes"
rm -f "$work/dl/curl.bin"
run_timed cap-aria2c aria2c -q -x8 -s8 --min-split-size=1M --file-allocation=falloc \
  --allow-overwrite=true --auto-file-renaming=false -d "$work/dl" -o aria.bin "$cap_url"
cap_aria=$wall cap_aria_cpu=$cpu
rm -f "$work/dl/aria.bin"
cap_speedup=$(calc "$cap_curl / $cap_hc")
for triple in "hubcache:$cap_hc:$cap_hc_cpu" "curl:$cap_curl:$cap_curl_cpu" "aria2c -x8:$cap_aria:$cap_aria_cpu"; do
  IFS=: read -r name w u <<<"$triple"
  record capped "$name wall" "$w" s
  record capped "$name throughput" "$(calc "$cap_bytes / $w / 1e6" 1)" MB/s
  printf '  %-15s %8.3f s  %6.1f MB/s  CPU %5.2f s\n' "$name" "$w" "$(calc "$cap_bytes / $w / 1e6" 1)" "$u" >&2
done
if ((has_conns)); then
  rm -rf "$work/dl/hc"
  run_timed cap-hubcache-1 env HF_ENDPOINT="$cdn" "$hc" download bench/capped capped.bin --cache-dir "$work/dl/hc" -q \
    --connections 1
  record capped "hubcache --connections 1 wall" "$wall" s
  printf '  %-15s %8.3f s\n' "hubcache -c 1" "$wall" >&2
fi
record capped "hubcache speedup over one stream" "$cap_speedup" x
record capped "aria2c -x8 speedup over one stream" "$(calc "$cap_curl / $cap_aria")" x
log "  hubcache is ${cap_speedup}x one stream (the cap allows at most ${conns}x with $conns connections)"

# ---- 3. a 1,000-file repo ----------------------------------------------------------------
section "$many-file repo from hubcache serve: hubcache snapshot (median of $runs) vs snapshotDownload (one run)"
peer gen "$work/many-src" "$many" 1024 16384 7
commit=$("$hc" import "$work/many-src" --repo bench/many --cache-dir "$work/serve-cache" -q | tail -1)
# The access log (one line per request, with its milliseconds) tells how many requests
# each client sent and how much of its time the server spent answering them.
"$hc" serve --cache-dir "$work/serve-cache" --port 0 >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
hub=$(wait_for_file_line "$work/serve.out") || die "hubcache serve did not start: $(cat "$work/serve.log")"
server_since() {  # LINE: "<requests> <server seconds>" logged after line LINE of the access log
  sleep 0.2  # the log line of the last response is written just after the response
  tail -n +"$(($1 + 1))" "$work/serve.log" | awk '$1 == "hub" || $1 == "cdn" {sub("ms$", "", $NF); s += $NF; n++}
    END {printf "%d %.3f\n", n, s / 1000}'
}
log_lines() { wc -l <"$work/serve.log"; }
many_hc=() many_js=() many_hc_rss=() many_js_rss=() many_hc_cpu=() many_js_cpu=()
# Each run writes into a cache of its own, and nothing is deleted between runs: ext4 makes new
# files slow for about 30 s after many were deleted (its inode allocator skips inodes deleted in
# the last 30 s and reads the inode table to find them), so a run after an `rm -rf` of the
# previous one's 3,000 entries measured the file system's clean-up, not the client.
for ((r = 1; r <= runs; ++r)); do
  l0=$(log_lines)
  run_timed "many-hubcache-$r" env HF_ENDPOINT="$hub" "$hc" download bench/many --cache-dir "$work/many-hc-$r" -q
  many_hc+=("$wall") many_hc_rss+=("$rss") many_hc_cpu+=("$cpu")
  read -r many_hc_requests many_hc_server < <(server_since "$l0")
  snap=$(tail -1 "$work/many-hubcache-$r.out")
  ((r == 1)) || continue
  diff -rq "$work/many-src" "$snap" >/dev/null || die "hubcache's snapshot differs from the source"
  # snapshotDownload is an order of magnitude slower (one file at a time): one run keeps the
  # whole benchmark within minutes, and its noise is small next to the ratio.
  l0=$(log_lines)
  run_timed "many-js-$r" node "$js/peer.mjs" snapshot "$hub" bench/many "$work/many-js"
  many_js+=("$wall") many_js_rss+=("$rss") many_js_cpu+=("$cpu")
  read -r many_js_requests many_js_server < <(server_since "$l0")
  jsnap=$(tail -1 "$work/many-js-$r.out")
  diff -rq "$work/many-src" "$jsnap" >/dev/null || die "snapshotDownload's snapshot differs from the source"
done
mv "$work/many-hc-1" "$work/many-hc"  # the warm hits below read the first run's cache
many_hc_s=$(median "${many_hc[@]}") many_js_s=$(median "${many_js[@]}")
many_speedup=$(calc "$many_js_s / $many_hc_s")
record many "hubcache snapshot wall" "$many_hc_s" s
record many "snapshotDownload wall" "$many_js_s" s
record many "hubcache CPU (user + system)" "$(median "${many_hc_cpu[@]}")" s
record many "snapshotDownload CPU (user + system)" "$(median "${many_js_cpu[@]}")" s
record many "hubcache peak RSS" "$(calc "$(maximum "${many_hc_rss[@]}") / 1024" 1)" MiB
record many "snapshotDownload peak RSS" "$(calc "$(maximum "${many_js_rss[@]}") / 1024" 1)" MiB
record many "hubcache requests to the server" "$many_hc_requests" requests
record many "snapshotDownload requests to the server" "$many_js_requests" requests
record many "server time answering hubcache (sum over requests)" "$many_hc_server" s
record many "server time answering snapshotDownload (sum over requests)" "$many_js_server" s
record many "hubcache speedup over snapshotDownload" "$many_speedup" x
printf '  %-17s %8.3f s  %5d requests, %6.3f s in the server  (runs: %s)\n' hubcache "$many_hc_s" "$many_hc_requests" \
  "$many_hc_server" "${many_hc[*]}" >&2
printf '  %-17s %8.3f s  %5d requests, %6.3f s in the server  (runs: %s)\n' snapshotDownload "$many_js_s" \
  "$many_js_requests" "$many_js_server" "${many_js[*]}" >&2
log "  speedup ${many_speedup}x"

# ---- 4. warm hits ------------------------------------------------------------------------
section "warm hits on a cached file (the $many-file repo's cache)"
warm_file="d02/f00042.txt"
[[ -f $work/many-hc/models--bench--many/snapshots/$commit/$warm_file ]] || die "the warm file is not cached"
reps=$((quick ? 1 : 3))
"$bench_fetch" --cache-dir "$work/many-hc" --repo bench/many --file "$warm_file" --commit "$commit" \
  --benchmark_min_time=0.2 --benchmark_repetitions="$reps" --benchmark_format=console \
  --benchmark_out="$out/fetch.json" --benchmark_out_format=json >&2
gbench() {  # NAME [real_time|cpu_time]: the median in ns (the only run when there is one repetition)
  jq -r --arg n "$1" --arg t "${2:-real_time}" '[.benchmarks[] | select(.run_name == $n)]
    | (map(select(.aggregate_name == "median")) + map(select(.run_type == "iteration")))[0]
    | .[$t] * (if .time_unit == "us" then 1000 elif .time_unit == "ms" then 1e6 else 1 end)' "$out/fetch.json"
}
lib_commit_ns=$(gbench BM_fetch_commit)
record warm "library fetch at a commit" "$(calc "$lib_commit_ns" 0)" ns
record warm "library fetch at a commit, CPU time" "$(calc "$(gbench BM_fetch_commit cpu_time)" 0)" ns
capi_commit_ns=$(gbench BM_capi_fetch_commit)
capi_ratio=$(calc "$capi_commit_ns / $lib_commit_ns" 2)
record warm "C API hubcache_fetch at a commit" "$(calc "$capi_commit_ns" 0)" ns
record warm "C API / C++ fetch at a commit" "$capi_ratio" x
record warm "library fetch at main, offline" "$(calc "$(gbench BM_fetch_branch_offline)" 0)" ns
record warm "library fetch at main, max_age" "$(calc "$(gbench BM_fetch_branch_max_age)" 0)" ns
record warm "library lookup at main" "$(calc "$(gbench BM_lookup_branch)" 0)" ns
record warm "library is_cached at a commit" "$(calc "$(gbench BM_is_cached_commit)" 0)" ns
js_loop=$(peer file-loop "$hub" bench/many "$warm_file" "$commit" "$work/many-hc" 20000 | jq -r .ns_per_call)
record warm "JS downloadFileToCacheDir at a commit, in process" "$(calc "$js_loop" 0)" ns
record warm "JS in-process / library fetch at a commit" "$(calc "$js_loop / $lib_commit_ns" 1)" x
log "  library fetch at a commit: $(calc "$lib_commit_ns / 1000" 2) µs; JS downloadFileToCacheDir in process: $(calc "$js_loop / 1000" 2) µs"

hyperfine -N --warmup 3 --runs "$cli_runs" --export-json "$out/warm-cli.json" --style basic \
  "$hc download bench/many $warm_file --revision $commit --cache-dir $work/many-hc -q" \
  "$hc download bench/many $warm_file --offline --cache-dir $work/many-hc -q" \
  "$hc path bench/many $warm_file --cache-dir $work/many-hc" \
  "node $js/peer.mjs file $hub bench/many $warm_file $commit $work/many-hc" >&2
cli_commit=$(hyperfine_median "$out/warm-cli.json" 0)
cli_js=$(hyperfine_median "$out/warm-cli.json" 3)
record warm "CLI download at a commit" "$(calc "$cli_commit * 1000" 2)" ms
record warm "CLI download --offline at main" "$(calc "$(hyperfine_median "$out/warm-cli.json" 1) * 1000" 2)" ms
record warm "CLI path" "$(calc "$(hyperfine_median "$out/warm-cli.json" 2) * 1000" 2)" ms
record warm "node downloadFileToCacheDir at a commit (process)" "$(calc "$cli_js * 1000" 2)" ms
record warm "CLI download at a commit, CPU (user + system)" "$(calc "$(hyperfine_cpu "$out/warm-cli.json" 0) * 1000" 2)" ms
record warm "node downloadFileToCacheDir, CPU (user + system)" "$(calc "$(hyperfine_cpu "$out/warm-cli.json" 3) * 1000" 2)" ms
warm_cli_speedup=$(calc "$cli_js / $cli_commit" 1)
record warm "CLI hit speedup over the JS client process" "$warm_cli_speedup" x

# ---- 5. scanning a 10,000-file cache -----------------------------------------------------
scan_total=$((scan_repos * scan_per_repo))
section "scanning a $scan_total-file cache ($scan_repos repos of $scan_per_repo files): hubcache ls vs scanCacheDir"
# Flat folders: scanCacheDir (2.17.5) does not descend into sub-folders of a snapshot, so
# nested files would make it do less work than hubcache ls, not the same work.
peer gen-repos "$work/scan-src" "$scan_repos" "$scan_per_repo" 256 4096 1000
for ((i = 0; i < scan_repos; ++i)); do
  "$hc" import "$work/scan-src/$i" --repo "bench/scan-$i" --cache-dir "$work/scan-cache" -q >/dev/null
done
ls_files=$("$hc" ls --cache-dir "$work/scan-cache" --format json | jq '[.[].nb_files] | add')
js_scan=$(peer scan "$work/scan-cache")
[[ $ls_files == "$scan_total" && $(jq -r .files <<<"$js_scan") == "$scan_total" && $(jq -r .warnings <<<"$js_scan") == 0 ]] ||
  die "ls counts $ls_files files, scanCacheDir $js_scan; expected $scan_total"
hyperfine -N --warmup 2 --runs "$((cli_runs / 3 + 2))" --export-json "$out/scan.json" --style basic \
  "$hc ls --cache-dir $work/scan-cache" \
  "node $js/peer.mjs scan $work/scan-cache" >&2
ls_s=$(hyperfine_median "$out/scan.json" 0) scan_s=$(hyperfine_median "$out/scan.json" 1)
ls_speedup=$(calc "$scan_s / $ls_s" 1)
record scan "hubcache ls" "$(calc "$ls_s * 1000" 1)" ms
record scan "node scanCacheDir (process)" "$(calc "$scan_s * 1000" 1)" ms
record scan "hubcache ls CPU (user + system)" "$(calc "$(hyperfine_cpu "$out/scan.json" 0) * 1000" 1)" ms
record scan "node scanCacheDir CPU (user + system)" "$(calc "$(hyperfine_cpu "$out/scan.json" 1) * 1000" 1)" ms
record scan "hubcache ls speedup over scanCacheDir" "$ls_speedup" x

echo "load:        $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the end" >>"$out/machine.txt"

# ---- targets, tables, chart --------------------------------------------------------------
: >"$out/targets.tsv"
target() {  # NAME VALUE OP THRESHOLD UNIT
  local status
  status=$(awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN {
    ok = (op == "<=") ? v <= t : (op == "<") ? v < t : (op == ">=") ? v >= t : v > t
    print ok ? "PASS" : "MISS" }')
  printf '%s\t%s\t%s %s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$status" >>"$out/targets.tsv"
}
target "cold ${big_mib} MiB: hubcache wall / physical limit, max(curl, dd+fsync)" "$limit_ratio" "<=" 1.15 x
target "cold ${big_mib} MiB: hubcache peak RSS" "$cold_rss_mib" "<" 64 MiB
target "capped $rate/connection: hubcache speedup over one stream" "$cap_speedup" ">=" 4 x
target "$many files: hubcache speedup over snapshotDownload" "$many_speedup" ">=" 5 x
target "warm library fetch at a commit" "$(calc "$lib_commit_ns / 1000" 2)" "<" 20 µs
target "warm hubcache_fetch (C API) / C++ fetch at a commit" "$capi_ratio" "<=" 2 x
target "ls of $scan_total files: speedup over scanCacheDir" "$ls_speedup" ">=" 5 x

{
  echo '```'
  cat "$out/machine.txt"
  echo '```'
  echo
  echo "| section | measure | value | unit |"
  echo "|---|---|---:|---|"
  awk -F'\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}' "$out/results.tsv"
  echo
  echo "| target | measured | goal | result |"
  echo "|---|---:|---:|---|"
  awk -F'\t' '{printf "| %s | %s %s | %s %s | %s |\n", $1, $2, $4, $3, $4, $5}' "$out/targets.tsv"
} >"$out/results.md"

# The chart: hubcache's speedup over each peer (log scale) next to the target, and the
# cold download's wall time per client.
{
  printf '"cold\\nvs limit" %s %s\n' "$(calc "$limit_cold / $hc_cold" 2)" "$(calc "1 / 1.15" 2)"
  printf '"capped\\nvs 1 stream" %s 4\n' "$cap_speedup"
  printf '"%s files\\nvs JS" %s 5\n' "$many" "$many_speedup"
  printf '"CLI hit\\nvs node" %s -\n' "$warm_cli_speedup"
  printf '"library hit\\nvs JS" %s -\n' "$(calc "$js_loop / $lib_commit_ns" 1)"
  printf '"ls\\nvs scan" %s 5\n' "$ls_speedup"
} >"$out/speedup.dat"
gnuplot -e "speedup='$out/speedup.dat'; cold='$out/cold.dat'; output='$out/benchmarks.svg'; coldmib='$big_mib'" \
  bench/chart.gp || die "gnuplot failed"

section "figures"
column -t -s $'\t' "$out/results.tsv" >&2
section "targets$( ((quick)) && echo ' (quick sizes: indicative only)')"
while IFS=$'\t' read -r name value goal unit status; do
  printf '  %-4s  %-64s %10s %-4s (goal %s %s)\n' "$status" "$name" "$value" "$unit" "$goal" "$unit"
done <"$out/targets.tsv"
log ""
log "written: $out/{results.tsv,targets.tsv,results.md,machine.txt,benchmarks.svg,fetch.json,warm-cli.json,scan.json}"
