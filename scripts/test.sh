#!/usr/bin/env bash
# README command 2 (and CI): install what is missing, build, run every test: unit, end-to-end,
# the mutation self-test, the fuzz corpus replay; then build the libFuzzer target with clang
# and fuzz for FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/install-deps.sh
scripts/build.sh dev
ctest --preset dev -j "$(nproc 2>/dev/null || echo 2)"

# The whole suite again under AddressSanitizer and UBSan (ASAN_SKIP=1 skips it locally).
if [[ "${ASAN_SKIP:-0}" != 1 ]]; then
  asan_start=$(date +%s)
  scripts/build.sh asan-ubsan
  ctest --preset asan-ubsan -j "$(nproc 2>/dev/null || echo 2)"
  echo "test.sh: sanitizer build and tests took $(( $(date +%s) - asan_start )) s"
fi

fuzz_seconds=${FUZZ_SECONDS:-60}
if (( fuzz_seconds > 0 )); then
  scripts/build.sh fuzz --target checkin_fuzzer
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # New inputs go to a scratch folder; the committed corpus is read, never rewritten here.
  rc=0
  (cd fuzzers && ../build/fuzz/fuzzers/checkin_fuzzer -max_total_time="$fuzz_seconds" \
      -dict=checkin_fuzzer.dict -max_len=65536 -artifact_prefix="$work/" -print_final_stats=1 \
      "$work" ../corpus/checkin_fuzzer >"$work/fuzz.log" 2>&1) || rc=$?
  tail -n 12 "$work/fuzz.log"
  if (( rc != 0 )); then
    # A crash input becomes a permanent regression input of the corpus.
    for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
      [[ -e "$f" ]] && cp "$f" corpus/checkin_fuzzer/ && echo "fuzzing found $(basename "$f"); kept in corpus/checkin_fuzzer/" >&2
    done
    echo "test.sh: checkin_fuzzer failed (exit $rc)" >&2
    exit 1
  fi
fi
echo "test.sh: all tests passed in $(( $(date +%s) - start )) s"
