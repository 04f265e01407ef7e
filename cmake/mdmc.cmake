# Flags live on interface targets, never on global variables.
add_library(mdmc_options INTERFACE)
target_compile_features(mdmc_options INTERFACE cxx_std_20)
# The source folder reaches code through a generated header, not a -D: a definition that differs
# per checkout would change every compile's ccache key, so worktrees would never share a hit.
configure_file("${PROJECT_SOURCE_DIR}/cmake/source_dir.hpp.in" "${PROJECT_BINARY_DIR}/generated/mdmc/source_dir.hpp" @ONLY)
target_include_directories(mdmc_options INTERFACE "${PROJECT_SOURCE_DIR}" "${PROJECT_BINARY_DIR}/generated")
target_compile_definitions(mdmc_options INTERFACE MDMC_VERSION="${PROJECT_VERSION}")
# clang before 15 cannot compile a C++20 coroutine under UBSan's function check (the check's
# prologue data in the coroutine's split functions: "Cannot represent a difference across
# sections", LLVM issue 49689), and the network modules are Asio coroutines. g++ has no such
# check; with clang 14 it is left out, and every other UBSan check stays.
set(mdmc_ubsan_exceptions "")
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 15)
  set(mdmc_ubsan_exceptions -fno-sanitize=function)
endif()
if(MDMC_SANITIZE)
  target_compile_options(mdmc_options INTERFACE -fsanitize=address,undefined ${mdmc_ubsan_exceptions} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(mdmc_options INTERFACE -fsanitize=address,undefined)
endif()
# Under OSS-Fuzz or ClusterFuzzLite the engine and the sanitizers are theirs: CXXFLAGS carries
# the instrumentation and $LIB_FUZZING_ENGINE the engine (.clusterfuzzlite/build.sh passes it).
set(MDMC_LIB_FUZZING_ENGINE "" CACHE STRING
  "Fuzzing engine to link the fuzzers with ($LIB_FUZZING_ENGINE); when set, the sanitizer flags come from CXXFLAGS, not from the project")
if(MDMC_LIB_FUZZING_ENGINE)
  separate_arguments(MDMC_FUZZING_ENGINE UNIX_COMMAND "${MDMC_LIB_FUZZING_ENGINE}")
else()
  set(MDMC_FUZZING_ENGINE -fsanitize=fuzzer)
endif()
if(MDMC_FUZZ AND NOT MDMC_LIB_FUZZING_ENGINE)
  # Instrument the project's own code for coverage; the fuzzer binaries add the engine.
  if(MDMC_FUZZ_SANITIZERS)
    # Coverage leaves out what cmake/fuzz_coverage_ignorelist.txt names (it says why), named
    # relative to the top build folder, where Ninja (the presets' generator) runs the compiler,
    # so that the flag is the same in every checkout. ccache does not read the list: the hash of
    # its entries goes on the command line, and a change to it configures again. (The throughput
    # build's flags stay as bench/fuzz_bench.sh measured them; ClusterFuzzLite's build takes the
    # engine's flags alone.)
    set(mdmc_ignorelist_file "${PROJECT_SOURCE_DIR}/cmake/fuzz_coverage_ignorelist.txt")
    set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${mdmc_ignorelist_file}")
    file(RELATIVE_PATH mdmc_ignorelist "${CMAKE_BINARY_DIR}" "${mdmc_ignorelist_file}")
    file(STRINGS "${mdmc_ignorelist_file}" mdmc_ignorelist_entries REGEX "^[^#]")  # comments change nothing
    string(SHA256 mdmc_ignorelist_sha "${mdmc_ignorelist_entries}")
    string(SUBSTRING "${mdmc_ignorelist_sha}" 0 16 mdmc_ignorelist_sha)
    target_compile_options(mdmc_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined ${mdmc_ubsan_exceptions}
      -fno-omit-frame-pointer -fsanitize-coverage-ignorelist=${mdmc_ignorelist} -DMDMC_COVERAGE_IGNORELIST=${mdmc_ignorelist_sha})
    target_link_options(mdmc_options INTERFACE -fsanitize=address,undefined)
  else()
    # The throughput build: no sanitizers, and coverage only where it tells inputs apart (see
    # MDMC_FUZZ_COVERAGE_MODULES). Frame pointers stay, so that perf can walk stacks.
    target_compile_options(mdmc_options INTERFACE -fno-omit-frame-pointer)
  endif()
endif()
# The modules whose edges depend on what an input is (its plist, its message, the session's
# judging of the answer): in the throughput build only these are instrumented. The HTTP client,
# TLS and signing take the same path for every input; their counters only cost time in every
# run, and their timing-dependent branches would pass for new behaviour.
set(MDMC_FUZZ_COVERAGE_MODULES plist protocol fuzz CACHE STRING
  "Modules instrumented for coverage when MDMC_FUZZ is on and MDMC_FUZZ_SANITIZERS off")

add_library(mdmc_warnings INTERFACE)
target_compile_options(mdmc_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Woverloaded-virtual)

# mdmc_add_module(NAME SRCS a.cpp b.cpp DEPS mdmc::x ext TESTS a_test.cpp)
# gives the library mdmc_<name>, its alias mdmc::<name>, and the test binary mdmc_<name>_test.
function(mdmc_add_module name)
  cmake_parse_arguments(M "" "" "SRCS;DEPS;TESTS;TEST_DEPS" ${ARGN})
  add_library(mdmc_${name} STATIC ${M_SRCS})
  add_library(mdmc::${name} ALIAS mdmc_${name})
  target_link_libraries(mdmc_${name} PUBLIC mdmc_options ${M_DEPS} PRIVATE mdmc_warnings)
  if(MDMC_FUZZ AND NOT MDMC_FUZZ_SANITIZERS AND NOT MDMC_LIB_FUZZING_ENGINE AND name IN_LIST MDMC_FUZZ_COVERAGE_MODULES)
    # Edge counters, without the comparison tracing: that fed libFuzzer's byte-level hints at
    # the cost of a call on every byte the plist scanner compares (18 % of the fuzzer's time,
    # perf), and the structure-aware mutator and the dictionary name the keys and values anyway.
    target_compile_options(mdmc_${name} PRIVATE -fsanitize=fuzzer-no-link -fno-sanitize-coverage=trace-cmp)
  endif()
  if(MDMC_BUILD_TESTS AND M_TESTS)
    add_executable(mdmc_${name}_test ${M_TESTS})
    target_link_libraries(mdmc_${name}_test PRIVATE mdmc_${name} ${M_TEST_DEPS} mdmc_warnings GTest::gtest GTest::gmock GTest::gtest_main)
    gtest_discover_tests(mdmc_${name}_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120)
  endif()
endfunction()
