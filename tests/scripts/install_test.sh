#!/usr/bin/env bash
# `cmake --install` puts a usable package in place: an application builds against it with
# find_package(hubcache) and with pkg-config, and runs the seed API offline.
set -euo pipefail
: "${HUBCACHE_BUILD_DIR:?}" "${HUBCACHE_SOURCE_DIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$HUBCACHE_BUILD_DIR" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/hubcache"
test -f "$prefix/include/hubcache/hubcache.hpp"

mkdir -p "$work/app"
cat > "$work/app/main.cpp" <<'CPP'
#include <hubcache/hubcache.hpp>
#include <iostream>
int main(int argc, char** argv) {
  hubcache::Options o;
  o.cache_dir = argv[1];
  o.offline = true;
  std::cout << hubcache::cache_root(o).string() << "\n";
  std::cout << (hubcache::is_cached("org/m", "config.json", o) ? "cached" : "missing") << "\n";
  try {
    hubcache::fetch("org/m", "config.json", o);
  } catch (const hubcache::Error& e) {
    std::cout << "code " << static_cast<int>(e.code()) << "\n";
  }
  return argc == 2 ? 0 : 1;
}
CPP
cat > "$work/app/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.20)
project(app CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(hubcache REQUIRED)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE hubcache::hubcache)
CMAKE
cmake -S "$work/app" -B "$work/app/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/app/build" >/dev/null
out=$("$work/app/build/app" "$work/cache")
expected=$(printf '%s\nmissing\ncode 3' "$work/cache")
[[ "$out" == "$expected" ]] || { echo "find_package app printed: $out"; exit 1; }
test -d "$work/cache"

PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig" \
  g++ -std=c++20 "$work/app/main.cpp" -o "$work/app/app-pc" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig" pkg-config --cflags --libs hubcache)
out=$("$work/app/app-pc" "$work/cache2")
[[ "$out" == "$(printf '%s\nmissing\ncode 3' "$work/cache2")" ]] || { echo "pkg-config app printed: $out"; exit 1; }
echo "install test: find_package and pkg-config consumers built and ran"
