#!/usr/bin/env bash
# Proves .clusterfuzzlite/build.sh without Docker: runs it with OSS-Fuzz's environment set to
# the local clang, then checks $OUT as ClusterFuzzLite's runner would use it: every
# in-process fuzzer of fuzzers/ is there with its dictionary, options and seed corpus zip,
# links libplist statically (the instrumented build), and runs its seeds plus a few hundred
# mutations from $OUT.
#
#   scripts/check-clusterfuzzlite.sh [OUT WORK]
#
# OUT and WORK default to fresh temporary folders; scripts/test.sh passes build/fuzz-out and
# build/fuzz-work, keeps the fuzzers and fuzzes them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
out=${1:-$scratch/out}
work=${2:-$scratch/work}
mkdir -p "$out" "$work"

# What OSS-Fuzz sets for an ASan build with libFuzzer, plus UBSan as the fuzz preset has it.
export CC=clang-14 CXX=clang++-14
export CFLAGS="-O1 -fno-omit-frame-pointer -gline-tables-only -fsanitize=address,undefined -fsanitize=fuzzer-no-link"
export CXXFLAGS="$CFLAGS"
export LIB_FUZZING_ENGINE=-fsanitize=fuzzer
SRC=$(dirname "$repo")
OUT=$(cd "$out" && pwd)
WORK=$(cd "$work" && pwd)
export SRC OUT WORK
start=$(date +%s)
.clusterfuzzlite/build.sh
echo "check-clusterfuzzlite: build.sh took $(( $(date +%s) - start )) s"

failures=0
fail() {
  echo "check-clusterfuzzlite: $*" >&2
  failures=$((failures + 1))
}

# The expected set comes from the sources, not from build.sh's own discovery: every
# fuzzers/*_fuzzer.cpp but those that fuzz a live server (they read MDMC_FUZZ_TARGET).
expected=()
for source in fuzzers/*_fuzzer.cpp; do
  grep -q MDMC_FUZZ_TARGET "$source" && continue
  expected+=("$(basename "$source" .cpp)")
done
(( ${#expected[@]} > 0 )) || fail "no in-process fuzzer in fuzzers/"

for name in "${expected[@]}"; do
  binary="$OUT/$name"
  if [[ ! -x "$binary" ]]; then
    fail "$name: no fuzzer in \$OUT"
    continue
  fi
  if ldd "$binary" | grep -q 'libplist'; then
    fail "$name: linked to a shared libplist, not the instrumented static one"
  fi
  for extension in dict options; do
    if [[ -f "fuzzers/$name.$extension" ]] && ! cmp -s "fuzzers/$name.$extension" "$OUT/$name.$extension"; then
      fail "$name: \$OUT/$name.$extension missing or not fuzzers/$name.$extension"
    fi
  done
  seeds="$scratch/seeds/$name"
  mkdir -p "$seeds" "$scratch/new/$name"
  if [[ -d "corpus/$name" ]]; then
    zip="$OUT/${name}_seed_corpus.zip"
    if [[ ! -f "$zip" ]]; then
      fail "$name: no ${name}_seed_corpus.zip"
    else
      (cd "$seeds" && cmake -E tar xf "$zip")
      in_zip=$(find "$seeds" -type f | wc -l)
      in_corpus=$(find "corpus/$name" -maxdepth 1 -type f | wc -l)
      (( in_zip == in_corpus )) || fail "$name: seed zip holds $in_zip files, corpus/$name $in_corpus"
    fi
  fi
  # Run from $OUT, as the runner does (the options file names the dictionary relative to it).
  # Undefined behaviour stops the run, as in OSS-Fuzz's UBSan builds: the seeds hold the
  # regression inputs, and one that reaches UB again (libplist's included) fails here.
  dict=()
  [[ -f "$OUT/$name.dict" ]] && dict=(-dict="$name.dict")
  runs=300
  rc=0
  (cd "$OUT" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 timeout 300 "./$name" "${dict[@]}" -runs=$runs -seed=1 \
      "$scratch/new/$name" "$seeds") >"$scratch/$name.log" 2>&1 || rc=$?
  done_runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$scratch/$name.log")
  if (( rc != 0 )) || (( ${done_runs:-0} < runs )); then
    tail -n 20 "$scratch/$name.log" >&2
    fail "$name: did not run $runs inputs from its seeds (exit $rc)"
  else
    echo "check-clusterfuzzlite: $name ok ($(grep -m1 INITED "$scratch/$name.log" | grep -o 'cov: [0-9]* ft: [0-9]*'))"
  fi
done

if (( failures > 0 )); then
  echo "check-clusterfuzzlite: $failures problem(s)" >&2
  exit 1
fi
echo "check-clusterfuzzlite: ${#expected[@]} fuzzers built by .clusterfuzzlite/build.sh and run from \$OUT"
