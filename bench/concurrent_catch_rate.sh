#!/usr/bin/env bash
# The catch rate of chn/concurrent (CHN-CONCURRENT) against the built-in server's
# shared-response-slot fault, over RUNS default runs of that case (each with its own seed), and
# how often the correct server passes it: a flaky pass or a false alarm both show here.
#
#   bench/concurrent_catch_rate.sh [BINARY] [RUNS]    default: build/dev/mdmconform 100
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/dev/mdmconform}
runs=${2:-100}
[[ -x "$bin" ]] || { echo "concurrent_catch_rate: no binary at $bin" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy: a rebuild during the runs must not swap the binary under them.
cp "$bin" "$work/mdmconform"
bin=$work/mdmconform
caught=0
passed=0
for ((i = 1; i <= runs; i++)); do
  rc=0
  "$bin" run chn/concurrent --fault shared-response-slot --seed "$i" --quiet --out "$work/f$i" >/dev/null 2>&1 || rc=$?
  [[ $rc == 1 ]] && caught=$((caught + 1))
  rc=0
  "$bin" run chn/concurrent --seed "$i" --quiet --out "$work/c$i" >/dev/null 2>&1 || rc=$?
  [[ $rc == 0 ]] && passed=$((passed + 1))
  rm -rf "$work/f$i" "$work/c$i"
done
echo "| runs | shared-response-slot caught (exit 1) | correct server passed (exit 0) |"
echo "|---|---|---|"
echo "| $runs | $caught ($((100 * caught / runs)) %) | $passed ($((100 * passed / runs)) %) |"
