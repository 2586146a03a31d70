# Included by the root CMakeLists.txt in a test build (HUBCACHE_BUILD_TESTS, HUBCACHE_FUZZ_SMOKE):
# builds the fuzz targets with clang in a nested build folder (<build>/fuzz) and registers a
# test fuzz.<name> per target that runs it briefly, so `ctest` (scripts/test.sh, CI) runs them.
find_program(HUBCACHE_FUZZ_CXX NAMES clang++ clang++-14 clang++-15 clang++-16)
if(NOT HUBCACHE_FUZZ_CXX)
  message(FATAL_ERROR "The test suite runs the fuzz targets and needs clang and libFuzzer: run "
                      "scripts/install-deps.sh --test (Debian: clang libclang-rt-14-dev), or configure with "
                      "-DHUBCACHE_FUZZ_SMOKE=OFF to leave them out.")
endif()
include(${PROJECT_SOURCE_DIR}/fuzz/targets.cmake)
include(ExternalProject)
set(fuzz_dir ${PROJECT_BINARY_DIR}/fuzz)
set(fuzz_args -DCMAKE_CXX_COMPILER=${HUBCACHE_FUZZ_CXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo
              -DHUBCACHE_BUILD_FUZZ=ON -DHUBCACHE_BUILD_TESTS=OFF -DHUBCACHE_FUZZ_SECONDS=${HUBCACHE_FUZZ_SECONDS})
if(CMAKE_CXX_COMPILER_LAUNCHER)
  list(APPEND fuzz_args -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER})
endif()
set(fuzz_binaries)
foreach(name ${HUBCACHE_FUZZ_TARGETS})
  list(APPEND fuzz_binaries ${fuzz_dir}/fuzz/fuzz_${name})
endforeach()
ExternalProject_Add(hubcache_fuzz_build
  SOURCE_DIR ${PROJECT_SOURCE_DIR}
  BINARY_DIR ${fuzz_dir}
  CMAKE_ARGS ${fuzz_args}
  BUILD_COMMAND ${CMAKE_COMMAND} --build ${fuzz_dir} --target hubcache_fuzzers
  BUILD_ALWAYS ON  # the nested build decides what is out of date
  BUILD_BYPRODUCTS ${fuzz_binaries}
  INSTALL_COMMAND "")
foreach(name ${HUBCACHE_FUZZ_TARGETS})
  hubcache_add_fuzz_test(${name} ${fuzz_dir}/fuzz/fuzz_${name} ${fuzz_dir}/fuzz)
endforeach()
