#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, build, run every test (unit, end-to-end,
# the mutation self-test, the fuzz corpus replay) under ASan and UBSan; then build the libFuzzer targets with clang
# through .clusterfuzzlite/build.sh and fuzz each for FUZZ_SECONDS (default 35).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/install-deps.sh --test
# The tests run once per preset in MDMC_TEST_PRESETS. The default is the AddressSanitizer and
# UBSan build alone: it runs every test the plain build does, and building both took CI ten
# minutes of its 30. MDMC_TEST_PRESETS="dev asan-ubsan" runs
# both; MDMC_TEST_PRESETS=dev the quick plain build alone.
read -r -a presets <<<"${MDMC_TEST_PRESETS:-asan-ubsan}"
for preset in "${presets[@]}"; do
  preset_start=$(date +%s)
  scripts/build.sh "$preset"
  ctest --preset "$preset" -j "$(nproc 2>/dev/null || echo 2)"
  echo "test.sh: $preset build and tests took $(( $(date +%s) - preset_start )) s"
done

# 35 s each: nine fuzzers in about the time five took at 60 s (eight did), within CI's budget.
fuzz_seconds=${FUZZ_SECONDS:-35}
if (( fuzz_seconds > 0 )); then
  fuzzers=(checkin_fuzzer response_fuzzer scenario_loader_fuzzer profile_loader_fuzzer server_handler_fuzzer
    scep_response_fuzzer enrollment_profile_fuzzer push_request_fuzzer declarative_client_fuzzer)
  # Every fuzzer is built once, by ClusterFuzzLite's build script with OSS-Fuzz's variables
  # set to the local clang (libplist instrumented too), checked in its $OUT, and fuzzed there.
  fuzz_build_start=$(date +%s)
  scripts/check-clusterfuzzlite.sh build/fuzz-out build/fuzz-work
  echo "test.sh: fuzzers built and checked in $(( $(date +%s) - fuzz_build_start )) s"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  for fuzzer in "${fuzzers[@]}"; do
    # New inputs go to a scratch folder; the committed corpus is read, never rewritten here.
    mkdir -p "$work/$fuzzer"
    dict=()
    [[ -f "fuzzers/$fuzzer.dict" ]] && dict=(-dict="fuzzers/$fuzzer.dict")
    # The handler fuzzer resumes sessions from copies of the service; here every resumed session
    # is also run from the start, and must be answered the same.
    check=()
    [[ $fuzzer == server_handler_fuzzer ]] && check=(MDMC_CHECK_RESUMED=1)
    rc=0
    env "${check[@]}" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "build/fuzz-out/$fuzzer" -max_total_time="$fuzz_seconds" "${dict[@]}" -max_len=65536 \
        -artifact_prefix="$work/$fuzzer-" -print_final_stats=1 \
        "$work/$fuzzer" "corpus/$fuzzer" >"$work/$fuzzer.log" 2>&1 || rc=$?
    tail -n 4 "$work/$fuzzer.log"
    if (( rc != 0 )); then
      # A crash input becomes a permanent regression input of the corpus.
      for f in "$work/$fuzzer"-crash-* "$work/$fuzzer"-leak-* "$work/$fuzzer"-timeout-* "$work/$fuzzer"-oom-*; do
        [[ -e "$f" ]] && cp "$f" "corpus/$fuzzer/" && echo "fuzzing found $(basename "$f"); kept in corpus/$fuzzer/" >&2
      done
      echo "test.sh: $fuzzer failed (exit $rc)" >&2
      exit 1
    fi
  done
  # The network fuzzer end to end against the built-in server: a clean run, a seeded bug found
  # and replayed, SIGINT (harness/tests/fuzz_cli_test.cpp). build.sh leaves it out (it needs a
  # live server); it is built in the same configuration, so only its own code compiles here.
  cmake --build build/fuzz-work/build -j "$(nproc 2>/dev/null || echo 2)" --target target_fuzzer
  MDMC_TARGET_FUZZER="$PWD/build/fuzz-work/build/fuzzers/target_fuzzer" ctest --preset "${presets[0]}" -L fuzz-e2e
fi
echo "test.sh: all tests passed in $(( $(date +%s) - start )) s"
