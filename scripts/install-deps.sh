#!/usr/bin/env bash
# Installs what hubcache needs on Debian 12 (bookworm) with apt-get.
#   scripts/install-deps.sh          build dependencies
#   scripts/install-deps.sh --test   plus what the test suite uses (GoogleTest, cpp-httplib for the
#                                    test servers, Node.js for the interoperability tests with
#                                    @huggingface/hub, openssl, clang and libFuzzer for the fuzz targets,
#                                    Elixir and the Erlang headers for the Elixir binding's NIF, nginx
#                                    as a rack cache in front of serve --upstream)
#   scripts/install-deps.sh --bench  plus what bench/run.sh, bench/serve.sh and bench/mirror.sh use (nginx,
#                                    wrk, python3, aria2, hyperfine, gnuplot, Google Benchmark, GNU time,
#                                    jq, openssl, Node.js, cpp-httplib for the fault server as upstream)
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config ca-certificates
          libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libcli11-dev libboost-dev)
if [[ "${1:-}" == "--test" ]]; then
  # openssl: certificates for the TLS tests; clang, libclang-rt: the fuzz targets (fuzz/smoke.cmake);
  # elixir, erlang-dev: bindings/elixir (tests/scripts/elixir_test.sh)
  # nginx: the rack cache in front of serve --upstream (tests/e2e/mirror_test.cpp)
  packages+=(libgtest-dev libgmock-dev libcpp-httplib-dev nodejs npm curl openssl clang libclang-rt-14-dev elixir erlang-dev
             nginx)
fi
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(nginx wrk python3 aria2 curl openssl hyperfine gnuplot-nox libbenchmark-dev time jq nodejs npm
             libcpp-httplib-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere than Debian (a newer one already on PATH): keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "error: run this as root, or install sudo, to apt-get install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
