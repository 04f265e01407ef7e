#!/usr/bin/env bash
# Checks bench/fuzz_bench.sh's bookkeeping without fuzzing: a fake mdmconform writes the
# summary.json files that the real `mdmconform fuzz` writes, with known times, and the table
# must show their medians, the not-found trials as ">CAP s", the trial counts and exec/s.
# Run by ctest (FuzzBenchScript).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "fuzz_bench_test: $*" >&2; exit 1; }

# The fake: `list --seeded-bugs` lists two bugs; `fuzz` writes DIR/fuzz/summary.json.
#   alpha-500, plist: found at t_s = 2 x seed (2, 4, 6): median 4.0 s; 100 executions in elapsed 10 s
#   alpha-500, bytes: never found; trial 2 finds something else (a transport finding): >30 s
#   beta-reset,  plist: found, no t_s, elapsed_s = seed + 0.5 (1.5, 2.5, 3.5): median 2.5 s
#   beta-reset,  bytes: found in trial 1 only, at 7 s: median >30 s (two of three not found)
#   none:         nothing found, in either mode
cat >"$work/mdmconform" <<'EOF'
#!/usr/bin/env bash
set -eu
if [[ "$1" == list ]]; then
  printf 'alpha-500                  500 to something odd\nbeta-reset                   a reset on something else\n'
  exit 0
fi
[[ "$1" == fuzz ]] || exit 2
shift
bug= mutator= seed= out= cap= jobs=
while (($#)); do
  case "$1" in
    --seeded-bug) bug=$2; shift 2 ;;
    --mutator) mutator=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --max-time) cap=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --no-feedback) shift ;;
    --max-findings) [[ "$2" == 1 ]] || exit 2; shift 2 ;;
    --no-minimise) shift ;;
    *) exit 2 ;;
  esac
done
[[ -n "$bug" && -n "$mutator" && -n "$seed" && -n "$out" && "$cap" == 30 && "$jobs" == 1 ]] || exit 2
[[ -n "${FAKE_UNREACHABLE:-}" ]] && exit 3
mkdir -p "$out/fuzz"
s="$out/fuzz/summary.json"
case "$bug/$mutator" in
  alpha-500/plist) printf '{"elapsed_s": 10, "executions": 100, "findings": [{"oracle": "status-5xx", "t_s": %d, "file": "f", "summary": "500"}]}' $((2 * seed)) >"$s"; exit 1 ;;
  alpha-500/bytes)
    if [[ "$seed" == 2 ]]; then  # a finding, but not this bug's kind: not counted as found
      printf '{"elapsed_s": 12, "executions": 120, "findings": [{"oracle": "transport", "t_s": 12, "file": "f", "summary": "timeout"}]}' >"$s"; exit 1
    fi
    printf '{"elapsed_s": 30.0, "executions": 600, "findings": []}' >"$s"; exit 0 ;;
  beta-reset/plist) printf '{"executions": 50, "elapsed_s": %d.5, "findings": [{"oracle": "transport", "file": "f", "summary": "reset"}]}' "$seed" >"$s"; exit 1 ;;
  beta-reset/bytes)
    if [[ "$seed" == 1 ]]; then
      printf '{"elapsed_s": 7, "executions": 70, "findings": [{"oracle": "transport", "t_s": 7, "file": "f", "summary": "reset"}]}' >"$s"; exit 1
    fi
    printf '{"elapsed_s": 30, "executions": 330, "findings": []}' >"$s"; exit 0 ;;
  none/*) printf '{"elapsed_s": 30, "executions": 300, "findings": []}' >"$s"; exit 0 ;;
esac
exit 2
EOF
chmod +x "$work/mdmconform"

export BENCH_BIN="$work/mdmconform" BENCH_CAP=30 BENCH_TRIALS=3 BENCH_OUT="$work/out/table.md"
"$here/fuzz_bench.sh" >"$work/stdout.txt" 2>"$work/stderr.txt" || fail "exited $?: $(cat "$work/stderr.txt")"

table="$work/out/table.md"
[[ -s "$table" ]] || fail "no table written"
expect_row() {
  grep -qxF "$1" "$table" || fail "row missing: $1
table:
$(cat "$table")"
}
expect_row "| bug | structure-aware median | byte-level median | trials found | structure-aware exec/s | byte-level exec/s | oracle | other findings |"
# alpha-500, plist: 300 executions over 30 s; bytes: 1320 over 72 s.
expect_row "| alpha-500 | 4.0 s | >30 s | 3/3 / 0/3 | 10 | 18 | status-5xx | bytes trial 2: transport at 12 s |"
# beta-reset, plist: 150 executions over 7.5 s; bytes: 730 over 67 s.
expect_row "| beta-reset | 2.5 s | >30 s | 3/3 / 1/3 | 20 | 11 | transport | - |"
expect_row "| none (control: the correct server) | >30 s | >30 s | 0/1 / 0/1 | 10 | 10 | - | - |"
grep -qF "| alpha-500 |" "$work/stdout.txt" || fail "the table was not printed"
[[ $(wc -l <"$work/out/table.tsv") == 15 ]] || fail "expected 14 trials in the TSV, got: $(cat "$work/out/table.tsv")"

# A bug named on the command line runs alone, and a mode list picks the columns.
BENCH_MODES="bytes-nofeedback" BENCH_CONTROL=0 "$here/fuzz_bench.sh" beta-reset >/dev/null 2>&1 || fail "a single bug failed"
expect_row "| beta-reset | >30 s | 1/3 | 11 | transport | - |"
grep -qF "alpha-500" "$table" && fail "alpha-500 ran though only beta-reset was asked for"

# The table can be remade from a saved TSV alone, without running anything.
cp "$work/out/table.tsv" "$work/saved.tsv"
rm "$work/out/table.md"
BENCH_BIN=/nonexistent BENCH_MODES="bytes-nofeedback" "$here/fuzz_bench.sh" --table "$work/saved.tsv" >/dev/null 2>&1 ||
  fail "--table failed"
expect_row "| beta-reset | >30 s | 1/3 | 11 | transport | - |"

# Usage errors and an unreachable target end the run with their own codes.
code=0; BENCH_MODES="plist sideways" "$here/fuzz_bench.sh" >/dev/null 2>&1 || code=$?
[[ $code == 2 ]] || fail "an unknown mode exited $code, not 2"
code=0; BENCH_TRIALS=0 "$here/fuzz_bench.sh" >/dev/null 2>&1 || code=$?
[[ $code == 2 ]] || fail "BENCH_TRIALS=0 exited $code, not 2"
code=0; FAKE_UNREACHABLE=1 "$here/fuzz_bench.sh" alpha-500 >/dev/null 2>&1 || code=$?
[[ $code == 3 ]] || fail "an unreachable target exited $code, not 3"
echo "fuzz_bench_test: ok"
