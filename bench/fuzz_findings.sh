#!/usr/bin/env bash
# Unique findings (after deduplication) that `mdmconform fuzz` makes against each seeded bug of
# the built-in reference server in a given time, with the default (throughput) fuzzer: how much
# a nightly run would report per bug, and per hour at that rate. "In each quarter" counts the
# findings by when they were first seen (the summary's t_s): whether they keep coming or dry up.
# (Every finding has a t_s; one without would count in the first quarter.)
#
#   bench/fuzz_findings.sh [SECONDS] [BUG...]     default 60 s, every seeded bug
#
# FUZZ_FINDINGS_KEEP=DIR keeps each bug's run folder (DIR/BUG, with fuzz/summary.json and
# fuzz/findings) instead of deleting it: an hour's run is worth reading again (new findings in
# each ten minutes, the keys). A bug whose DIR/BUG is already there is not run: its old findings
# and corpus would count in the new row.
#
# Needs build/dev/mdmconform (BENCH_BIN) and a built target_fuzzer (it finds it itself).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
bin=${BENCH_BIN:-build/dev/mdmconform}
[[ -x "$bin" ]] || { echo "fuzz_findings: no mdmconform at $bin" >&2; exit 2; }
bugs=("$@")
if ((${#bugs[@]} == 0)); then
  mapfile -t bugs < <("$bin" list --seeded-bugs | awk '{print $1}' | grep -v '^none$')
fi
if [[ -n "${FUZZ_FINDINGS_KEEP:-}" ]]; then
  work=$FUZZ_FINDINGS_KEEP
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
echo "| seeded bug | inputs | unique findings in ${seconds} s | per hour at that rate | in each quarter of the run | hits | minimised | oracles |"
echo "|---|---|---|---|---|---|---|---|"
for bug in "${bugs[@]}"; do
  if [[ -e "$work/$bug" ]]; then
    echo "| $bug | - | not run: $work/$bug is already there | - | - | - | - | - |"
    continue
  fi
  timeout --kill-after=10 $((seconds + 120)) "$bin" fuzz --seeded-bug "$bug" --max-time "$seconds" --seed 1 \
    --out "$work/$bug" --quiet >/dev/null 2>&1 || true
  s="$work/$bug/fuzz/summary.json"
  [[ -f "$s" ]] || { echo "| $bug | - | no summary | - | - | - | - | - |"; continue; }
  jq -r --arg bug "$bug" --argjson secs "$seconds" '
    (.findings | length) as $n |
    ([range(4) as $q | [.findings[] | select((.t_s // 0) * 4 >= $q * $secs and ((.t_s // 0) * 4 < ($q + 1) * $secs or $q == 3))] | length] | map(tostring) | join(" / ")) as $quarters |
    "| \($bug) | \(.executions // 0) | \($n) | \(($n * 3600 / $secs) | floor) | \($quarters) | \([.findings[] | .hits // 1] | add // 0) | \([.findings[] | select(.minimised == true)] | length) | \([.findings[].oracle] | unique | join(", "))\(if .target_down then " (stopped: target down)" else "" end) |"' "$s"
done
