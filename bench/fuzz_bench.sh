#!/usr/bin/env bash
# Time-to-find for each seeded bug of the reference server: the network fuzzer with its
# structure-aware plist mutator against plain byte-level libFuzzer, from the same seed corpus
# and the same --seed per trial, several trials each, the median reported. Run by hand, not by
# ctest: it takes up to bugs x modes x trials x BENCH_CAP seconds.
#
#   bench/fuzz_bench.sh [BUG...]        default: every bug `mdmconform list --seeded-bugs` lists
#   bench/fuzz_bench.sh --table TSV     only remake the table from a saved per-trial TSV (with the
#                                       same BENCH_CAP, BENCH_TRIALS and BENCH_MODES)
#
# A trial counts as finding its bug only when the oracle that fired is one the bug can fire:
# status-5xx or liveness for a bug that answers 5xx (-500, -wedge, -corrupts), transport or
# liveness for one that stalls or resets (-hang, -reset). Any other finding is listed apart, as
# is every finding against the correct server (the control row): the fuzzer's false positives.
#
# Settings (environment):
#   BENCH_BIN     mdmconform to run (default build/dev/mdmconform); it finds the libFuzzer
#                 binary itself (build/fuzz/fuzzers/target_fuzzer: scripts/build.sh fuzz --target target_fuzzer)
#   BENCH_TRIALS  trials per bug and mode (default 3); trial i uses --seed i in every mode
#   BENCH_CAP     seconds per trial (default 120); a trial that finds nothing by then counts as
#                 "not found within CAP", and a median among those reads ">CAP s"
#   BENCH_MODES   columns, in order (default "plist bytes"): plist, bytes, plist-nofeedback,
#                 bytes-nofeedback (the last two pass --no-feedback: no extra counters fed back)
#   BENCH_CONTROL 1 (default) also fuzzes the correct server (--seeded-bug none) once per mode:
#                 a finding there is a false positive, and makes the other rows suspect
#   BENCH_OUT     the Markdown table (default bench/results/fuzz_bench.md); the per-trial
#                 numbers go beside it, same name with .tsv
#   BENCH_JOBS    --jobs for the fuzzer (default 1: the machine is shared)
#
# Exit: 0 when the table was written, 2 for a usage error, 3 when the fuzzer could not reach
# its target. Needs bash, awk and jq (Debian's jq reads summary.json).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${BENCH_BIN:-build/dev/mdmconform}
trials=${BENCH_TRIALS:-3}
cap=${BENCH_CAP:-120}
modes=${BENCH_MODES:-"plist bytes"}
control=${BENCH_CONTROL:-1}
out_md=${BENCH_OUT:-bench/results/fuzz_bench.md}
out_tsv=${out_md%.md}.tsv
jobs=${BENCH_JOBS:-1}

usage() { echo "fuzz_bench: $*" >&2; exit 2; }
table_from=
if [[ "${1:-}" == --table ]]; then
  [[ -f "${2:-}" ]] || usage "--table needs a per-trial TSV written by an earlier run"
  table_from=$2
fi
if [[ -z "$table_from" ]]; then
  [[ -x "$bin" ]] || usage "no mdmconform at $bin (build it, or set BENCH_BIN)"
  command -v jq >/dev/null || usage "jq is missing (scripts/install-deps.sh installs it)"
fi
[[ "$trials" =~ ^[1-9][0-9]*$ ]] || usage "BENCH_TRIALS must be a positive integer, not '$trials'"
[[ "$cap" =~ ^[1-9][0-9]*$ ]] || usage "BENCH_CAP must be a positive number of seconds, not '$cap'"
for mode in $modes; do
  case "$mode" in
    plist | bytes | plist-nofeedback | bytes-nofeedback) ;;
    *) usage "unknown mode '$mode' in BENCH_MODES (plist, bytes, plist-nofeedback, bytes-nofeedback)" ;;
  esac
done

if [[ -n "$table_from" ]]; then
  bugs=()
elif (($# > 0)); then
  bugs=("$@")
else
  mapfile -t bugs < <("$bin" list --seeded-bugs | awk '$1 != "none" { print $1 }')
  ((${#bugs[@]} > 0)) || usage "\`$bin list --seeded-bugs\` listed no bugs"
fi
rows=("${bugs[@]}")
[[ "$control" == 1 && -z "$table_from" ]] && rows+=(none)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out_md")"
if [[ -n "$table_from" ]]; then
  cp "$table_from" "$work/trials.tsv"
  [[ "$(cd "$(dirname "$table_from")" && pwd)/$(basename "$table_from")" == "$(cd "$(dirname "$out_tsv")" && pwd)/$(basename "$out_tsv")" ]] ||
    cp "$table_from" "$out_tsv"
else
  # One line per trial: bug mode trial found(1/0) seconds executions elapsed_s oracle
  printf 'bug\tmode\ttrial\tfound\tt_s\texecutions\telapsed_s\toracle\n' >"$out_tsv"
fi

# The fuzz command's flags for a mode.
mode_flags() {
  case "$1" in
    plist) echo "--mutator plist" ;;
    bytes) echo "--mutator bytes" ;;
    plist-nofeedback) echo "--mutator plist --no-feedback" ;;
    bytes-nofeedback) echo "--mutator bytes --no-feedback" ;;
  esac
}

# Reads DIR/fuzz/summary.json of a finished trial and prints "found t_s executions elapsed_s
# oracle". The time to the first finding is its t_s; without one (a fuzzer that stopped at the
# finding before stamping it), the run's elapsed_s, since the run stops at the first finding.
read_summary() {
  local summary=$1 exit_code=$2
  if [[ ! -s "$summary" ]]; then
    echo "fuzz_bench: no summary at $summary (exit $exit_code)" >&2
    return 1
  fi
  jq -r --argjson code "$exit_code" '
    def num: if type == "number" then . else null end;
    (.findings // []) as $f
    | (.elapsed_s | num) as $elapsed
    | if ($f | length) > 0 or $code == 1 then
        [1, (($f[0].t_s | num) // $elapsed), (.executions | num // 0), $elapsed, ($f[0].oracle // "?")]
      else
        [0, null, (.executions | num // 0), $elapsed, "-"]
      end
    | map(if . == null then "-" else tostring end) | join(" ")' "$summary"
}

# Runs one trial and appends its line to the TSV.
run_trial() {
  local bug=$1 mode=$2 trial=$3
  local dir="$work/$bug-$mode-$trial" code=0
  # The guard past the cap covers enrolling, starting and stopping; the fuzzer stops itself, at
  # its first finding (--max-findings 1), which it does not minimise: the time measured is the
  # time to find, not to shrink.
  # shellcheck disable=SC2046
  timeout --kill-after=10 $((cap + 60)) "$bin" fuzz --seeded-bug "$bug" --max-time "$cap" $(mode_flags "$mode") \
    --jobs "$jobs" --seed "$trial" --max-findings 1 --no-minimise --out "$dir" >"$work/log.txt" 2>&1 || code=$?
  case "$code" in
    0 | 1) ;;
    2) tail -n 20 "$work/log.txt" >&2; usage "mdmconform fuzz refused its arguments (bug $bug, mode $mode)" ;;
    3) tail -n 20 "$work/log.txt" >&2; echo "fuzz_bench: the fuzzer could not reach the built-in server" >&2; exit 3 ;;
    *) tail -n 20 "$work/log.txt" >&2; echo "fuzz_bench: bug $bug, mode $mode, trial $trial: mdmconform fuzz exited $code; counted as not found" >&2 ;;
  esac
  local line
  if ! line=$(read_summary "$dir/fuzz/summary.json" "$code"); then
    tail -n 20 "$work/log.txt" >&2
    line="0 - 0 - error"
  fi
  read -r found t_s executions elapsed oracle <<<"$line"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$bug" "$mode" "$trial" "$found" "$t_s" "$executions" "$elapsed" "$oracle" >>"$out_tsv"
  if [[ "$found" == 1 ]]; then
    printf 'fuzz_bench: %-22s %-16s trial %d: found in %s s (%s), %s executions\n' "$bug" "$mode" "$trial" "$t_s" "$oracle" "$executions"
  else
    printf 'fuzz_bench: %-22s %-16s trial %d: not found within %s s, %s executions\n' "$bug" "$mode" "$trial" "$cap" "$executions"
  fi
}

[[ -z "$table_from" ]] &&
  echo "fuzz_bench: $bin, ${#bugs[@]} bug(s), modes: $modes, $trials trial(s), cap $cap s, --jobs $jobs, $(nproc) CPU(s)"
for bug in "${rows[@]}"; do
  [[ -n "$table_from" ]] && break
  n=$trials
  [[ "$bug" == none ]] && n=1  # the control: one trial per mode
  for mode in $modes; do
    for ((i = 1; i <= n; i++)); do run_trial "$bug" "$mode" "$i"; done
  done
done

# The table, from the TSV alone (so that it can be remade from a saved TSV).
awk -F'\t' -v cap="$cap" -v modes="$modes" -v trials="$trials" '
  function label(m) {
    return m == "plist" ? "structure-aware" : m == "bytes" ? "byte-level" \
         : m == "plist-nofeedback" ? "structure-aware, no feedback" : "byte-level, no feedback"
  }
  # The median of a row cell: not-found trials count as longer than any found one.
  function median(key,    n, i, j, v, t, a, b) {
    n = count[key]
    for (i = 1; i <= n; i++) v[i] = times[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    if (n == 0) return "-"
    if (n % 2) { a = v[(n + 1) / 2]; b = a } else { a = v[n / 2]; b = v[n / 2 + 1] }
    if (b >= INF) return ">" cap " s"
    return sprintf("%.1f s", (a + b) / 2)
  }
  # Whether a finding by this oracle is the seeded bug itself (see the top of the script).
  function expected(bug, oracle) {
    if (bug == "none") return 0
    if (oracle == "liveness") return 1
    if (bug ~ /-(hang|reset)$/) return oracle == "transport"
    return oracle == "status-5xx"
  }
  BEGIN { INF = 1e18; nm = split(modes, mode, " ") }
  NR == 1 { next }
  {
    key = $1 SUBSEP $2
    if (!($1 in seen)) { seen[$1] = 1; order[++nb] = $1 }
    count[key]++
    hit = $4 == 1 && expected($1, $8)
    times[key, count[key]] = hit ? $5 + 0 : INF
    found[key] += hit
    if ($4 == 1 && !hit) others[$1] = others[$1] (others[$1] == "" ? "" : ", ") $2 " trial " $3 ": " $8 " at " $5 " s"
    seen_key = $1 SUBSEP $8
    if (hit && !(seen_key in oracle_seen)) {
      oracle_seen[seen_key] = 1
      oracles[$1] = oracles[$1] (oracles[$1] == "" ? "" : ", ") $8
    }
    if ($7 != "-" && $7 > 0) { execs[key] += $6; secs[key] += $7 }
  }
  END {
    printf "| bug |"
    for (m = 1; m <= nm; m++) printf " %s median |", label(mode[m])
    printf " trials found |"
    for (m = 1; m <= nm; m++) printf " %s exec/s |", label(mode[m])
    printf " oracle | other findings |\n|---|"
    for (m = 1; m <= 2 * nm + 3; m++) printf "---|"
    printf "\n"
    for (b = 1; b <= nb; b++) {
      bug = order[b]
      printf "| %s%s |", bug, bug == "none" ? " (control: the correct server)" : ""
      for (m = 1; m <= nm; m++) printf " %s |", median(bug SUBSEP mode[m])
      cell = ""
      for (m = 1; m <= nm; m++) cell = cell (m > 1 ? " / " : "") (found[bug, mode[m]] + 0) "/" (count[bug, mode[m]] + 0)
      printf " %s |", cell
      for (m = 1; m <= nm; m++) {
        k = bug SUBSEP mode[m]
        # Parenthesized: a bare ">" after the arguments of printf would redirect its output.
        printf " %s |", (secs[k] > 0 ? sprintf("%.0f", execs[k] / secs[k]) : "-")
      }
      printf " %s | %s |\n", (oracles[bug] == "" ? "-" : oracles[bug]), (others[bug] == "" ? "-" : others[bug])
    }
  }' "${table_from:-$out_tsv}" >"$work/table.md"

{
  echo "Seeded-bug time-to-find, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) CPU(s):"
  echo "$trials trial(s) per bug and mode (the control row: 1), cap $cap s per trial, --jobs $jobs, median time to the first finding."
  echo "Trials found: per mode, in column order; a trial counts when its oracle fits the bug, other findings are listed apart."
  echo "Command: \`BENCH_TRIALS=$trials BENCH_CAP=$cap BENCH_MODES=\"$modes\" bench/fuzz_bench.sh\`"
  echo
  cat "$work/table.md"
} >"$out_md"
echo
cat "$out_md"
echo
echo "fuzz_bench: table in $out_md, per-trial numbers in $out_tsv"
