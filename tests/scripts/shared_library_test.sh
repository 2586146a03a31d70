#!/usr/bin/env bash
# libhubcache.so: its SONAME and version links, and a dynamic symbol table holding the C API
# (hubcache.h) and the public C++ API (include/hubcache/*.hpp) and nothing else: no libcurl,
# OpenSSL or nlohmann symbols, no std:: template instances, no internal namespace. Also: the C
# header compiles as C99 with warnings as errors (and as C++), and a C program links against
# the shared library with the C compiler alone.
set -euo pipefail
: "${HUBCACHE_BUILD_DIR:?}" "${HUBCACHE_SOURCE_DIR:?}"
build=$HUBCACHE_BUILD_DIR src=$HUBCACHE_SOURCE_DIR
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- files and SONAME ---------------------------------------------------------------------
version=$(sed -n 's/^project(hubcache VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[[ -n $version ]] || fail "no project version in CMakeLists.txt"
lib="$build/libhubcache.so"
[[ -L $lib && $(readlink "$lib") == libhubcache.so.0 ]] || fail "libhubcache.so is not a link to libhubcache.so.0"
[[ $(readlink "$build/libhubcache.so.0") == "libhubcache.so.$version" ]] ||
  fail "libhubcache.so.0 does not point at libhubcache.so.$version"
[[ -f $build/libhubcache.a ]] || fail "the static library is no longer built"
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libhubcache.so.0 ]] || fail "SONAME is '$soname', expected libhubcache.so.0"

# ---- the dynamic symbol table ---------------------------------------------------------------
headers=("$src"/include/hubcache/*.hpp)
nm -D --defined-only "$lib" > "$work/mangled"
nm -DC --defined-only "$lib" > "$work/demangled"
[[ $(wc -l < "$work/mangled") == $(wc -l < "$work/demangled") ]] || fail "nm output mismatch"
bad=()
c_exported=()
cxx_count=0
while IFS=$'\t' read -r raw pretty; do
  read -r _ type name <<<"$raw"
  sym=${name%%@*} node=${name#*@@}
  entity=${pretty%%@*}  # the demangled name without its version
  if [[ $type == A && ($name == HUBCACHE_0 || $name == "HUBCACHE_CXX_$version") ]]; then
    continue  # the version nodes themselves
  elif [[ $sym =~ ^hubcache_[a-z0-9_]+$ && $node == HUBCACHE_0 && $type == T ]]; then
    c_exported+=("$sym")
  elif [[ $sym =~ ^_Z(N|NK|TIN|TSN|TVN)8hubcache && $node == "HUBCACHE_CXX_$version" ]]; then
    # Public C++ API only: not an internal namespace, and named in a public header.
    if [[ $entity =~ hubcache::(layout|store|http|hub|transfer|util|serve|cli|detail)[:\<] ]]; then
      bad+=("$name  ($entity: an internal namespace)")
      continue
    fi
    if [[ $entity =~ ^(typeinfo\ name\ for|typeinfo\ for|vtable\ for)\ (.*)$ ]]; then
      cls=${BASH_REMATCH[2]##*::}
      grep -Eq "(class|struct) $cls\b" "${headers[@]}" || bad+=("$name  ($entity: not a class of the public headers)")
    else
      fn=${entity%%(*}
      fn=${fn//\[abi:cxx11\]/}
      fn=${fn##*::}
      fn=${fn#\~}
      grep -Eq "\b$fn\(" "${headers[@]}" || bad+=("$name  ($entity: not declared in include/hubcache/*.hpp)")
    fi
    cxx_count=$((cxx_count + 1))
  else
    bad+=("$name  ($entity)")
  fi
done < <(paste "$work/mangled" <(cut -c20- "$work/demangled"))  # cut: "<16 hex> <type> "
if ((${#bad[@]})); then
  printf 'exported but not public API:\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  fail "${#bad[@]} symbol(s) leak from libhubcache.so (hidden visibility, cmake/hubcache.map.in)"
fi
# The C++ API is there (fetch, the error type for catch clauses), not just the C one.
grep -q ' T _ZN8hubcache5fetch' "$work/mangled" || fail "hubcache::fetch is not exported"
grep -q ' V _ZTIN8hubcache5ErrorE@@' "$work/mangled" || fail "typeinfo for hubcache::Error is not exported"

# Every function hubcache.h declares is exported, and nothing else under that prefix.
grep -Eo '\bhubcache_[a-z0-9_]+\(' "$src/include/hubcache/hubcache.h" | tr -d '(' | sort -u > "$work/declared"
printf '%s\n' "${c_exported[@]}" | sort -u > "$work/exported"
if ! diff -u "$work/declared" "$work/exported" > "$work/c.diff"; then
  cat "$work/c.diff" >&2
  fail "the C functions exported differ from those hubcache.h declares (- declared only, + exported only)"
fi

# ---- the C header and a C program -----------------------------------------------------------
cat > "$work/all.c" <<'C'
#include <hubcache/hubcache.h>
#include <hubcache/hubcache.h> /* include guard */
int main(void) {
  hubcache_options* o = hubcache_options_new();
  int ok = o != NULL && hubcache_api_version() >= HUBCACHE_API_VERSION;
  hubcache_options_free(o);
  return ok ? 0 : 1;
}
C
for std in c99 c11; do
  cc -std=$std -Wall -Wextra -pedantic -Werror -I"$src/include" -c "$work/all.c" -o "$work/all-$std.o" ||
    fail "hubcache.h does not compile as $std with -Wall -Wextra -pedantic -Werror"
done
c++ -std=c++20 -Wall -Wextra -pedantic -Werror -x c++ -I"$src/include" -c "$work/all.c" -o "$work/all-cxx.o" ||
  fail "hubcache.h does not compile as C++"
cc -std=c99 -Wall -Wextra -pedantic -Werror -I"$src/include" "$src/examples/fetch_model.c" -o "$work/fetch_model_c" \
  -L"$build" -lhubcache -Wl,-rpath,"$build" || fail "examples/fetch_model.c does not build with cc against libhubcache.so"
cc "$work/all-c99.o" -o "$work/all" -L"$build" -lhubcache -Wl,-rpath,"$build" || fail "link"
"$work/all" || fail "hubcache_api_version() < HUBCACHE_API_VERSION"
ldd "$work/fetch_model_c" > "$work/ldd"
grep -q "libhubcache.so.0 => $build/libhubcache.so.0" "$work/ldd" || fail "fetch_model_c does not load libhubcache.so.0: $(cat "$work/ldd")"
echo "shared library test: SONAME libhubcache.so.0, ${#c_exported[@]} C and $cxx_count C++ symbols exported, all public"
