# The fuzz targets (fuzz/<name>.cpp -> fuzz_<name>) and how a test runs one briefly. Shared by
# fuzz/CMakeLists.txt (the clang build that compiles them) and fuzz/smoke.cmake (the test build,
# which builds them in a nested clang build).
set(HUBCACHE_FUZZ_TARGETS http_headers link_header hub_json cache_files urls names http_ranges)
set(HUBCACHE_FUZZ_SECONDS 3 CACHE STRING "Seconds each fuzz target runs as a test")

# A ctest test fuzz.<name>: the committed seeds (fuzz/corpus/<name>, read only) plus a scratch
# corpus in the build folder (new inputs go there), crash files in <work>/artifacts/.
function(hubcache_add_fuzz_test name binary work)
  set(seeds ${PROJECT_SOURCE_DIR}/fuzz/corpus/${name})
  file(MAKE_DIRECTORY ${work}/corpus/${name} ${work}/artifacts)
  set(args -max_total_time=${HUBCACHE_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
           -artifact_prefix=${work}/artifacts/${name}-)
  if(EXISTS ${PROJECT_SOURCE_DIR}/fuzz/dict/${name}.dict)
    list(APPEND args -dict=${PROJECT_SOURCE_DIR}/fuzz/dict/${name}.dict)
  endif()
  add_test(NAME fuzz.${name} COMMAND ${binary} ${args} ${work}/corpus/${name} ${seeds})
  math(EXPR timeout "${HUBCACHE_FUZZ_SECONDS} + 120")
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT ${timeout}
    ENVIRONMENT "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1;ASAN_OPTIONS=abort_on_error=0:detect_leaks=1")
endfunction()
