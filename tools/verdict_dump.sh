#!/usr/bin/env bash
# Prints, for one mdmconform binary, every verdict the built-in server's modes give: the suite
# against the correct server and against each fault mode, in each identity mode,
# one line per case ("mode fault case verdict [rules that failed]"), then `list --rules` and
# `list --faults`. Two binaries with the same output give the same verdicts; a refactor that
# must not change behaviour is checked with `diff <(verdict_dump.sh old) <(verdict_dump.sh new)`.
# Usage: tools/verdict_dump.sh BINARY [SPECS_DIR]   (fixed seed; needs jq)
set -euo pipefail
bin=$1
specs=${2:-$(cd "$(dirname "$0")/.." && pwd)/specs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mapfile -t faults < <("$bin" --specs "$specs" list --faults | awk 'NR>0 && $1 ~ /^[a-z0-9-]+$/ {print $1}')
run() {  # mode fault
  local out="$work/$1-$2"
  "$bin" --specs "$specs" run --seed 7 --confirm 0 --quiet --identity-mode "$1" --fault "$2" --out "$out" >/dev/null 2>&1 || true
  jq -r --arg m "$1" --arg f "$2" \
    '.cases[] | "\($m) \($f) \(.id) \(.verdict) \([.findings[] | select(.passed|not) | .rule] | unique | join(","))"' \
    "$out/report.json"
}
for mode in none mtls signature both; do
  for f in "${faults[@]}"; do run "$mode" "$f"; done
done
"$bin" --specs "$specs" list --rules
"$bin" --specs "$specs" list --faults
