#!/usr/bin/env bash
# hubcache serve against nginx on the same blobs, in one run (docs/benchmarks.md, "hubcache serve").
#
#   bench/serve.sh [--quick] [--threads N] [--seconds S] [--build-dir DIR] [--out DIR]
#                  [--rounds R] [--keep] [--no-install] [--no-build]
#
# Installs what it needs (scripts/install-deps.sh --bench: nginx, wrk, python3), builds
# hubcache in Release (default build-bench), imports a few repos into a cache in a temp
# folder, starts `hubcache serve --threads N` and nginx with N workers (N: the cores) on
# 127.0.0.1 ports, both serving the very same files (nginx through symlinks to the
# cache's blobs), and measures each target of issue 14 on both. Prints a table of
# figures, ratios and PASS/MISS, and writes it to <out>/serve.md (default
# <build dir>/bench-results). Run it alone, holding the CPU lock:
#   flock -x /tmp/hubcache-cpu.lock bench/serve.sh
#
#   --quick       shorter runs, smaller big file, fewer connections (a smoke run)
#   --threads N   event-loop threads for hubcache and workers for nginx (default: nproc)
#   --seconds S   length of each load run (default 5; quick 2)
#   --rounds R    big files: R runs per server and connection count, alternated (default 5; quick 1)
#   --only LIST   run only these parts (comma-separated: idle,slowloris,small,big,range,metadata)
set -Eeuo pipefail
shopt -s inherit_errexit
trap 'echo "bench: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
cd "$(dirname "$0")/.."

only="idle,slowloris,small,big,range,metadata" quick=0 threads=$(nproc) secs="" rounds="" build="build-bench" out="" keep=0 install=1 do_build=1
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --threads) threads=$2; shift ;;
    --seconds) secs=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --only) only=$2; shift ;;
    --build-dir) build=$2; shift ;;
    --out) out=$2; shift ;;
    --keep) keep=1 ;;
    --no-install) install=0 ;;
    --no-build) do_build=0 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((quick)); then
  big_mib=256 idle_n=500 slow_n=1000 range_others=500 secs=${secs:-2} rounds=${rounds:-1}
else
  big_mib=1024 idle_n=2000 slow_n=5000 range_others=3000 secs=${secs:-5} rounds=${rounds:-5}
fi
[[ -n $out ]] || out="$build/bench-results"
log() { printf '%s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
section() { printf '\n== %s\n' "$*" >&2; }

if ((install)); then scripts/install-deps.sh --bench; fi
for tool in nginx wrk /usr/bin/python3 /usr/bin/time; do command -v "$tool" >/dev/null || die "'$tool' is missing: run scripts/install-deps.sh --bench"; done
if ((do_build)); then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBCACHE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" --target hubcache_cli -j"${BENCH_JOBS:-$(nproc)}" >/dev/null
fi
hc="$(cd "$build" && pwd)/hubcache"
[[ -x $hc ]] || die "no $hc (drop --no-build)"
py=/usr/bin/python3
conns="$(pwd)/bench/conns.py"
lua="$(pwd)/bench/serve.lua"

# Many connections need many descriptors (the servers raise their own limits).
ulimit -n "$(ulimit -Hn)"
unset HF_HUB_OFFLINE HF_ENDPOINT HF_TOKEN HF_HOME HF_HUB_CACHE HUGGINGFACE_HUB_CACHE
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/hubcache-serve-bench.XXXXXX")
chmod 755 "$work"
nginx_pid="" serve_pid="" helper_pid=""
cleanup() {
  for pid in $helper_pid $nginx_pid $serve_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  if ((keep)); then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---- data: one cache, imported; nginx serves the same blob files ---------------------------
section "data"
mkdir -p "$work/src/small" "$work/src/big" "$work/src/listing"
head -c 4096 /dev/urandom >"$work/src/small/config.json"            # small regular file
head -c 65536 /dev/urandom >"$work/src/small/model.onnx"            # small LFS file (by its name)
head -c $((big_mib << 20)) /dev/urandom >"$work/src/big/model.safetensors"
for d in $(seq 0 9); do
  mkdir -p "$work/src/listing/dir$d"
  for f in $(seq 0 19); do printf 'file %d %d\n' "$d" "$f" >"$work/src/listing/dir$d/f$f.txt"; done
done
cache="$work/cache"
"$hc" import "$work/src/small" --repo bench/small --cache-dir "$cache" -q >/dev/null
"$hc" import "$work/src/big" --repo bench/big --cache-dir "$cache" -q >/dev/null
"$hc" import "$work/src/listing" --repo bench/listing --cache-dir "$cache" -q >/dev/null
small_git=$(basename "$(readlink "$cache"/models--bench--small/snapshots/*/config.json)")
small_lfs=$(sha256sum "$work/src/small/model.onnx" | cut -c1-64)
big_lfs=$(sha256sum "$work/src/big/model.safetensors" | cut -c1-64)
mkdir -p "$work/www"
ln -s "$cache/models--bench--small/blobs/$small_git" "$work/www/small.json"
ln -s "$cache/models--bench--small/blobs/$small_lfs" "$work/www/small.onnx"
ln -s "$cache/models--bench--big/blobs/$big_lfs" "$work/www/big.bin"
cat "$work/www/big.bin" "$work/www/small.onnx" "$work/www/small.json" >/dev/null  # both serve from the page cache
log "small regular 4 KiB, small LFS 64 KiB, big LFS $big_mib MiB, a repo of 200 files in 10 folders"

# ---- servers -------------------------------------------------------------------------------
port_of() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ngx_port=$(port_of)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $threads;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
worker_rlimit_nofile $(ulimit -Hn);
events { worker_connections 20000; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 60s;
  keepalive_requests 1000000;
  client_header_timeout 10s;
  default_type application/octet-stream;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$ngx_port; root $work/www; }
}
EOF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
"$hc" serve --cache-dir "$cache" --port 0 --threads "$threads" --no-access-log >"$work/serve.out" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 200); do [[ -s $work/serve.out ]] && break; sleep 0.05; done
hub=$(head -1 "$work/serve.out")
[[ -n $hub ]] || die "hubcache serve did not start: $(cat "$work/serve.log")"
hub_port=${hub##*:}
cdn_port=$(curl -sI "$hub/bench/small/resolve/main/model.onnx" | tr -d '\r' | sed -n 's|^Location: http://[^:]*:\([0-9]*\)/.*|\1|p')
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$ngx_port/small.json" && break; sleep 0.05; done
curl -sf -o /dev/null "http://127.0.0.1:$ngx_port/big.bin" -r 0-0 || die "nginx does not serve: $(cat "$work/nginx/error.log")"
cmp <(curl -s "$hub/bench/small/resolve/main/config.json") <(curl -s "http://127.0.0.1:$ngx_port/small.json") ||
  die "the two servers do not serve the same bytes"
log "hubcache serve $hub (CDN :$cdn_port), nginx :$ngx_port; $threads loop threads / workers each"

# URLs of the same bytes on each server.
declare -A url
url[hc_small]="$hub/bench/small/resolve/main/config.json"
url[ngx_small]="http://127.0.0.1:$ngx_port/small.json"
url[hc_lfs]="http://127.0.0.1:$cdn_port/$small_lfs"
url[ngx_lfs]="http://127.0.0.1:$ngx_port/small.onnx"
url[hc_big]="http://127.0.0.1:$cdn_port/$big_lfs"
url[ngx_big]="http://127.0.0.1:$ngx_port/big.bin"
url[hc_rev]="$hub/api/models/bench/listing/revision/main"
url[hc_tree]="$hub/api/models/bench/listing/tree/main?recursive=true"

# The server's processes (nginx: master and workers), their CPU ticks, threads, RSS.
pids_of() { if [[ $1 == hc ]]; then echo "$serve_pid"; else echo "$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"; fi; }
ticks() { local t=0 p f; for p in $(pids_of "$1"); do read -r -a f <"/proc/$p/stat"; t=$((t + f[13] + f[14])); done; echo $t; }
threads_of() { local t=0 p; for p in $(pids_of "$1"); do t=$((t + $(ls "/proc/$p/task" | wc -l))); done; echo $t; }
rss_mib() { local t=0 p; for p in $(pids_of "$1"); do t=$((t + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; echo $((t / 1024)); }
hz=$(getconf CLK_TCK)

# helper MODE ARGS...: starts conns.py, waits for "ready".
helper() {
  $py "$conns" "$@" >"$work/helper.out" 2>"$work/helper.err" &
  helper_pid=$!
  for _ in $(seq 1200); do grep -q ready "$work/helper.out" 2>/dev/null && return 0; sleep 0.05; done
  die "connection helper did not get ready: $(cat "$work/helper.err")"
}
stop_helper() { kill "$helper_pid" 2>/dev/null; wait "$helper_pid" 2>/dev/null || true; helper_pid=""; }
probe() { $py "$conns" probe 127.0.0.1 "$1" "$2" "$3" | awk '{print $2}'; }  # PORT PATH K -> median ms
path_of() { local u=${1#http://}; echo "/${u#*/}"; }
port_from() { local u=${1#http://}; u=${u%%/*}; echo "${u##*:}"; }

# load_report NAME CONNS REQUESTS BYTES SECONDS ERRORS T0 T1 CLIENT_CPU: sets req_s, mb_s, cpu_s
# (server CPU seconds, from its ticks T0 and T1), gb (GiB moved), client_s; logs a line.
load_report() {
  local name=$1 c=$2 req=$3 bytes=$4 s=$5 errors=$6 t0=$7 t1=$8
  client_s=$9
  req_s=$(awk "BEGIN {printf \"%.0f\", $req / $s}")
  mb_s=$(awk "BEGIN {printf \"%.1f\", $bytes / $s / 1048576}")
  cpu_s=$(awk "BEGIN {printf \"%.2f\", ($t1 - $t0) / $hz}")
  gb=$(awk "BEGIN {printf \"%.3f\", $bytes / 1073741824}")
  ((errors == 0)) || log "  warning: $errors errors"
  printf '  %-14s c=%-4s %9s req/s %9s MiB/s  server CPU %6.2f s (%s GiB)  client CPU %6.2f s  errors %s\n' "$name" \
    "$c" "$req_s" "$mb_s" "$cpu_s" "$gb" "$client_s" "$errors" >&2
}
per_gib() { awk "BEGIN {printf \"%.3f\", ($2 > 0 ? $1 / $2 : 0)}"; }  # SECONDS GIB
median() {  # FORMAT VALUES...
  local fmt=$1
  shift
  printf '%s\n' "$@" | sort -g | awk -v f="$fmt" '{v[NR] = $1} END {printf f, NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# wrk_run NAME URL CONNS [env...]: load_report's figures, wrk's CPU as the client's
wrk_run() {
  local name=$1 u=$2 c=$3 srv t0 t1 line
  shift 3
  srv=${name%%_*}
  t0=$(ticks "$srv")
  line=$(env "$@" /usr/bin/time -f 'CLIENT %U %S' -o "$work/time.out" \
    wrk -t"$((c < threads ? c : threads))" -c"$c" -d"${secs}s" --timeout 30s -s "$lua" "$u" | grep '^RESULT')
  t1=$(ticks "$srv")
  read -r _ _ req _ bytes _ s _ errors _ _ _ _ <<<"$line"
  load_report "$name" "$c" "$req" "$bytes" "$s" "$errors" "$t0" "$t1" "$(awk '/^CLIENT/ {print $2 + $3}' "$work/time.out")"
}

# dl_run NAME URL CONNS: whole downloads of URL over CONNS keep-alive connections, read 1 MiB per
# recv by min(CONNS, threads) conns.py processes (as wrk's threads); load_report's figures.
dl_run() {
  local name=$1 u=$2 c=$3 srv t0 t1 p procs i pids="" req bytes s errors cl
  srv=${name%%_*}
  procs=$((c < threads ? c : threads))
  t0=$(ticks "$srv")
  for ((i = 0; i < procs; i++)); do
    $py "$conns" download $(((c + i) / procs)) 127.0.0.1 "$(port_from "$u")" "$(path_of "$u")" "$secs" \
      >"$work/dl.$i" &
    pids+=" $!"
  done
  for p in $pids; do wait "$p" || die "conns.py download failed"; done
  t1=$(ticks "$srv")
  # One RESULT line per process: the sums, and the longest time.
  read -r req bytes s errors cl < <(cat "$work"/dl.* |
    awk '/^RESULT/ {r += $3; b += $5; if ($7 > s) s = $7; e += $9; cl += $11} END {print r, b, s, e, cl}')
  rm -f "$work"/dl.*
  load_report "$name" "$c" "$req" "$bytes" "$s" "$errors" "$t0" "$t1" "$cl"
}

want() { [[ ",$only," == *",$1,"* ]]; }
rows=()
row() { rows+=("$(printf '| %s | %s | %s | %s | %s | %s |' "$@")"); }
ratio() { awk "BEGIN {if ($2 == 0) print \"-\"; else printf \"%.2f\", $1 / $2}"; }
verdict() { awk "BEGIN {print ($1) ? \"PASS\" : \"MISS\"}"; }

# ---- 1. idle keep-alive connections ---------------------------------------------------------
if want idle; then
section "$idle_n idle keep-alive connections (each after one GET)"
for srv in hc ngx; do
  u=${url[${srv}_small]}
  helper idle "$idle_n" 127.0.0.1 "$(port_from "$u")" "$(path_of "$u")"
  sleep 1
  t0=$(ticks $srv)
  sleep 5
  t1=$(ticks $srv)
  cores=$(awk "BEGIN {printf \"%.3f\", ($t1 - $t0) / $hz / 5}")
  th=$(threads_of $srv)
  mem=$(rss_mib $srv)
  lat=$(probe "$(port_from "$u")" "$(path_of "$u")" 20)
  stop_helper
  declare "idle_cpu_$srv=$cores" "idle_threads_$srv=$th" "idle_rss_$srv=$mem" "idle_lat_$srv=$lat"
  log "  $srv: $cores cores, $th threads, $mem MiB RSS, a fresh GET $lat ms (median of 20)"
done
row "$idle_n idle: CPU (cores)" "$idle_cpu_hc" "$idle_cpu_ngx" "-" "< 0.05" "$(verdict "$idle_cpu_hc < 0.05")"
row "$idle_n idle: threads" "$idle_threads_hc" "$idle_threads_ngx" "-" "bounded" "$(verdict "$idle_threads_hc <= $threads + 8")"
row "$idle_n idle: RSS (MiB)" "$idle_rss_hc" "$idle_rss_ngx" "-" "< 64" "$(verdict "$idle_rss_hc < 64")"
row "$idle_n idle: fresh GET (ms, median)" "$idle_lat_hc" "$idle_lat_ngx" "-" "< 20" "$(verdict "$idle_lat_hc < 20")"
fi

# ---- 2. slowloris -----------------------------------------------------------------------------
if want slowloris; then
section "$slow_n slowloris connections (one header byte every 2 s)"
for srv in hc ngx; do
  u=${url[${srv}_small]}
  helper slowloris "$slow_n" 127.0.0.1 "$(port_from "$u")" 2
  sleep 1
  lat=$(probe "$(port_from "$u")" "$(path_of "$u")" 10)
  mem=$(rss_mib $srv)
  stop_helper
  declare "slow_lat_$srv=$lat" "slow_rss_$srv=$mem"
  log "  $srv: a fresh GET $lat ms (median of 10), $mem MiB RSS"
done
row "$slow_n slowloris: fresh GET (ms, median)" "$slow_lat_hc" "$slow_lat_ngx" "-" "< 200" "$(verdict "$slow_lat_hc < 200")"
fi

# ---- 3. small files ---------------------------------------------------------------------------
if want small; then
section "small files, 64 keep-alive connections"
for kind in small lfs; do
  wrk_run "hc_$kind" "${url[hc_$kind]}" 64
  hc_r=$req_s
  wrk_run "ngx_$kind" "${url[ngx_$kind]}" 64
  r=$(ratio "$hc_r" "$req_s")
  label=regular; [[ $kind == lfs ]] && label="LFS (CDN)"
  row "small $label file, 64 conns (req/s)" "$hc_r" "$req_s" "$r" ">= 0.8x" "$(verdict "$r >= 0.8")"
done
fi

# ---- 4. big files -----------------------------------------------------------------------------
# The client is conns.py download (1 MiB per recv, as real clients read: huggingface_hub 10 MB,
# libcurl 256 KiB), min(clients, threads) processes of it. wrk reads 8 KiB per recv and, at one
# connection, spends a core on it: its single-stream figure is the client's (kept for reference,
# with wrk's CPU). Runs alternate between the servers, the first one swapping each round, and the
# medians are compared: drift over the runs does not favour either side.
# big_case RUN CONNS: RUN (dl_run or wrk_run) on each server, $rounds rounds alternated; sets the
# medians hc_mb ngx_mb (MiB/s), hc_cpu_gb ngx_cpu_gb (server CPU s per GiB), hc_cl ngx_cl (client
# CPU s per GiB), hc_cores ngx_cores (client CPU s per second)
big_case() {
  local run=$1 c=$2 r srv order
  local -A list=()
  for r in $(seq "$rounds"); do
    order="hc ngx"; ((r % 2)) || order="ngx hc"
    for srv in $order; do
      "$run" "${srv}_big" "${url[${srv}_big]}" "$c"
      list[mb_$srv]+=" $mb_s" list[cpu_$srv]+=" $(per_gib "$cpu_s" "$gb")" list[cl_$srv]+=" $(per_gib "$client_s" "$gb")"
      list[cores_$srv]+=" $(awk "BEGIN {printf \"%.2f\", $client_s / $secs}")"
    done
  done
  # shellcheck disable=SC2086  # each list is split into its numbers
  {
    hc_mb=$(median %.1f ${list[mb_hc]}) ngx_mb=$(median %.1f ${list[mb_ngx]})
    hc_cpu_gb=$(median %.3f ${list[cpu_hc]}) ngx_cpu_gb=$(median %.3f ${list[cpu_ngx]})
    hc_cl=$(median %.3f ${list[cl_hc]}) ngx_cl=$(median %.3f ${list[cl_ngx]})
    hc_cores=$(median %.2f ${list[cores_hc]}) ngx_cores=$(median %.2f ${list[cores_ngx]})
  }
  log "  medians, $c connections: hubcache $hc_mb MiB/s ($hc_cpu_gb s/GiB server, $hc_cl client)," \
    "nginx $ngx_mb MiB/s ($ngx_cpu_gb s/GiB server, $ngx_cl client)"
}

if want big; then
section "big file ($big_mib MiB), whole downloads, 1 MiB reads: $rounds alternated rounds per connection count, medians"
for c in 1 8 64 256; do
  big_case dl_run "$c"
  n="$c connections"; ((c > 1)) || n="1 connection"
  r=$(ratio "$hc_mb" "$ngx_mb")
  row "big file, $n (MiB/s, median of $rounds)" "$hc_mb" "$ngx_mb" "$r" ">= 0.95x" "$(verdict "$r >= 0.95")"
  row "big file, $n (server CPU s per GiB)" "$hc_cpu_gb" "$ngx_cpu_gb" "$(ratio "$hc_cpu_gb" "$ngx_cpu_gb")" \
    "<= 1x" "$(verdict "$hc_cpu_gb <= $ngx_cpu_gb * 1.05")"
  row "big file, $n (client CPU s per GiB)" "$hc_cl" "$ngx_cl" "-" "-" "-"
done
section "big file, 1 wrk connection (8 KiB reads), for reference: $rounds alternated rounds, medians"
big_case wrk_run 1
row "big file, 1 wrk connection (MiB/s, median of $rounds)" "$hc_mb" "$ngx_mb" "$(ratio "$hc_mb" "$ngx_mb")" "-" "-"
row "big file, 1 wrk connection (server CPU s per GiB)" "$hc_cpu_gb" "$ngx_cpu_gb" "$(ratio "$hc_cpu_gb" "$ngx_cpu_gb")" "-" "-"
row "big file, 1 wrk connection (wrk's CPU, cores of 1)" "$hc_cores" "$ngx_cores" "-" "-" "-"
fi

# ---- 5. 1 MiB ranges next to other connections -----------------------------------------------
if want range; then
section "1 MiB range requests, 8 clients, $range_others other connections open"
for srv in hc ngx; do
  u=${url[${srv}_small]}
  helper idle "$range_others" 127.0.0.1 "$(port_from "$u")" "$(path_of "$u")"
  wrk_run "${srv}_range" "${url[${srv}_big]}" 8 RANGE_CHUNKS="$big_mib"
  stop_helper
  declare "range_$srv=$req_s"
done
r=$(ratio "$range_hc" "$range_ngx")
row "1 MiB ranges, 8 clients + $range_others open (req/s)" "$range_hc" "$range_ngx" "$r" ">= 0.8x" "$(verdict "$r >= 0.8")"
fi

# ---- 6. metadata ------------------------------------------------------------------------------
if want metadata; then
section "metadata, 64 keep-alive connections"
wrk_run hc_rev "${url[hc_rev]}" 64
row "revision/main (req/s)" "$req_s" "-" "-" ">= 5000" "$(verdict "$req_s >= 5000")"
wrk_run hc_tree "${url[hc_tree]}" 64
row "tree/main?recursive=true, 200 files (req/s)" "$req_s" "-" "-" ">= 2000" "$(verdict "$req_s >= 2000")"
fi

# ---- report -----------------------------------------------------------------------------------
{
  echo "hubcache serve vs nginx $(nginx -v 2>&1 | sed 's|.*/||'), $threads loop threads / workers each, load runs of ${secs} s"
  want big && echo "big files: median of $rounds alternated runs per server, bench/conns.py download (1 MiB per recv)"
  echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo
  echo "| measure | hubcache | nginx | ratio | target | result |"
  echo "|---|---:|---:|---:|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out/serve.md"
