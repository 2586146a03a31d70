#!/usr/bin/env bash
# `cmake --install` puts a usable package in place: an application builds against it with
# find_package(hubcache) and with pkg-config, static and shared, from C++ and from C (the C
# API), and runs the seed API offline.
set -euo pipefail
: "${HUBCACHE_BUILD_DIR:?}" "${HUBCACHE_SOURCE_DIR:?}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
cmake --install "$HUBCACHE_BUILD_DIR" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/hubcache"
test -f "$prefix/include/hubcache/hubcache.hpp"
test -f "$prefix/include/hubcache/hubcache.h"
so=$(find "$prefix" -name libhubcache.so.0)
[[ -n $so && -L $so && -f $(dirname "$so")/libhubcache.a && -L $(dirname "$so")/libhubcache.so ]] ||
  { echo "libhubcache.so, .so.0 and .a are not installed side by side"; find "$prefix"; exit 1; }
libdir=$(dirname "$so")
export PKG_CONFIG_PATH="$libdir/pkgconfig"

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
project(app C CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(hubcache REQUIRED)
add_executable(app main.cpp)
target_link_libraries(app PRIVATE hubcache::hubcache)
# The same program on the shared library: hubcache::Error thrown in it is caught here.
add_executable(app-shared main.cpp)
target_link_libraries(app-shared PRIVATE hubcache::hubcache_shared)
add_executable(capp main.c)
target_link_libraries(capp PRIVATE hubcache::hubcache_shared)
CMAKE
cat > "$work/app/main.c" <<'C'
#include <hubcache/hubcache.h>
#include <stdio.h>
int main(int argc, char** argv) {
  hubcache_options* o = hubcache_options_new();
  char* root = NULL;
  int cached = 1;
  hubcache_error* error = NULL;
  hubcache_options_set_cache_dir(o, argv[1]);
  hubcache_options_set_offline(o, 1);
  if (hubcache_cache_root(o, &root, NULL) != HUBCACHE_OK) return 1;
  printf("%s\n", root);
  hubcache_free(root);
  if (hubcache_is_cached("org/m", "config.json", o, &cached, NULL) != HUBCACHE_OK) return 1;
  printf("%s\n", cached ? "cached" : "missing");
  printf("code %d\n", (int)hubcache_fetch("org/m", "config.json", o, NULL, &error));
  hubcache_error_free(error);
  hubcache_options_free(o);
  return argc == 2 ? 0 : 1;
}
C
cmake -S "$work/app" -B "$work/app/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/app/build" >/dev/null
# Each program prints the cache root (which it creates), "missing" and the status of an
# offline miss (3, not_cached); the third argument says whether it loads the installed
# libhubcache.so.0 or has the static library linked in.
check() {  # NAME PROGRAM shared|static
  local cache="$work/cache-$1" out deps
  out=$("$2" "$cache") || { echo "$1 failed: $out"; exit 1; }
  [[ "$out" == "$(printf '%s\nmissing\ncode 3' "$cache")" ]] || { echo "$1 printed: $out"; exit 1; }
  test -d "$cache"
  deps=$(ldd "$2")
  if [[ $3 == shared ]]; then
    grep -q "libhubcache.so.0 => $libdir/libhubcache.so.0" <<<"$deps" || { echo "$1 does not load $so: $deps"; exit 1; }
  else
    ! grep -q libhubcache <<<"$deps" || { echo "$1 should not need libhubcache.so: $deps"; exit 1; }
  fi
}
check find_package-static "$work/app/build/app" static
check find_package-shared "$work/app/build/app-shared" shared
check find_package-c "$work/app/build/capp" shared

# pkg-config: hubcache is the shared library (the loader finds it through LD_LIBRARY_PATH
# here, ldconfig in a system prefix), hubcache-static the static one, from C++ and from C.
g++ -std=c++20 "$work/app/main.cpp" -o "$work/app/pc-shared" $(pkg-config --cflags --libs hubcache)
cc -std=c99 "$work/app/main.c" -o "$work/app/pc-c-shared" $(pkg-config --cflags --libs hubcache)
g++ -std=c++20 "$work/app/main.cpp" -o "$work/app/pc-static" $(pkg-config --cflags --libs hubcache-static)
cc -std=c99 "$work/app/main.c" -o "$work/app/pc-c-static" $(pkg-config --cflags --libs hubcache-static)
export LD_LIBRARY_PATH="$libdir"
check pkg-config-shared "$work/app/pc-shared" shared
check pkg-config-c-shared "$work/app/pc-c-shared" shared
check pkg-config-static "$work/app/pc-static" static
check pkg-config-c-static "$work/app/pc-c-static" static
echo "install test: find_package and pkg-config consumers, static and shared, C++ and C, built and ran"
