#!/usr/bin/env bash
# Soaks the in-process libFuzzer fuzzers under ASan and UBSan: each runs for a budget of CPU
# minutes with its committed corpus, dictionary and options, new inputs going to a scratch
# folder, and a Markdown table says what each did (CPU time, executions, coverage, corpus,
# peak RSS and how much it grew after the first minute, findings). A finding (crash, leak,
# timeout, out of memory) is copied into corpus/<fuzzer>/, where it stays as a regression
# input, and fails the script; a timeout only when its input, replayed alone, times out again
# (libFuzzer's timeout is wall time, which a starved fuzzer overruns on a busy machine).
#
#   scripts/fuzz-soak.sh [-m MINUTES] [-j JOBS] [-w FACTOR] [-o FILE] [-b DIR] [FUZZER...]
#
#   -m MINUTES  CPU minutes per fuzzer (default 60; decimals allowed)
#   -j JOBS     fuzzers at once, one per core (default nproc)
#   -w FACTOR   wall-time cap per fuzzer, in multiples of its CPU budget (default 2)
#   -o FILE     the table (default bench/results/fuzz_soak.md)
#   -b DIR      take the fuzzers from DIR, built already (build/fuzz-out from
#               scripts/check-clusterfuzzlite.sh); default: build the fuzz preset's
#               (scripts/build.sh fuzz) and take them from build/fuzz/fuzzers
#   FUZZER...   default: the in-process fuzzers scripts/test.sh fuzzes
#
# Bounds: a fuzzer is stopped (SIGINT, so that libFuzzer prints its final stats) once it has
# used its CPU budget; -max_total_time stops it after FACTOR times the budget in wall time on
# a machine too busy to give it the CPU (the table then says how much CPU it had); SIGKILL
# follows if it has not exited a minute after either. libFuzzer's own -timeout (25 s per input) and -rss_limit_mb (2048) make a hang or a
# memory leak a finding.
set -euo pipefail
command_line="scripts/fuzz-soak.sh${*:+ $*}"
cd "$(dirname "$0")/.."
repo=$PWD

minutes=60
jobs=$(nproc 2>/dev/null || echo 2)
wall_factor=2
out=bench/results/fuzz_soak.md
bin_dir=
usage() { sed -n '10,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "m:j:w:o:b:h" opt; do
  case $opt in
    m) minutes=$OPTARG ;;
    j) jobs=$OPTARG ;;
    w) wall_factor=$OPTARG ;;
    o) out=$OPTARG ;;
    b) bin_dir=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
fuzzers=("$@")
if (( ${#fuzzers[@]} == 0 )); then
  fuzzers=(checkin_fuzzer response_fuzzer scenario_loader_fuzzer profile_loader_fuzzer server_handler_fuzzer
    scep_response_fuzzer enrollment_profile_fuzzer push_request_fuzzer declarative_client_fuzzer)
fi
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "fuzz-soak: -m wants minutes, not '$minutes'" >&2; exit 2; }
[[ $wall_factor =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "fuzz-soak: -w wants a factor, not '$wall_factor'" >&2; exit 2; }
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "fuzz-soak: -j wants a positive count, not '$jobs'" >&2; exit 2; }
budget_s=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60 + 0.5); print (s < 1 ? 1 : s) }')
ticks=$(getconf CLK_TCK)

if [[ -z $bin_dir ]]; then
  scripts/build.sh fuzz --target "${fuzzers[@]}"
  bin_dir=build/fuzz/fuzzers
fi
bin_dir=$(cd "$bin_dir" && pwd)
for fuzzer in "${fuzzers[@]}"; do
  [[ -x "$bin_dir/$fuzzer" ]] || { echo "fuzz-soak: no $bin_dir/$fuzzer" >&2; exit 2; }
  [[ -d "corpus/$fuzzer" ]] || { echo "fuzz-soak: no corpus/$fuzzer" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# The fuzzer's .options ([libfuzzer] key = value, as ClusterFuzzLite reads them) as flags; the
# dictionary's path is relative to fuzzers/.
options_flags() {
  local file="fuzzers/$1.options" section= line key value
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%%#*}
    [[ $line =~ ^[[:space:]]*\[(.*)\][[:space:]]*$ ]] && { section=${BASH_REMATCH[1]}; continue; }
    [[ $section == libfuzzer && $line =~ ^[[:space:]]*([a-z_]+)[[:space:]]*=[[:space:]]*([^[:space:]]+) ]] || continue
    key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
    [[ $key == dict ]] && value="$repo/fuzzers/$value"
    echo "-$key=$value"
  done <"$file"
}

# utime + stime of a process, in seconds (0 once it is gone).
cpu_seconds() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  stat=${stat##*) }  # the fields after the command name, which may hold spaces
  read -r -a fields <<<"$stat"
  echo $(( (fields[11] + fields[12]) / ticks ))
}

rss_mb() { awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null || true; }

# Runs one fuzzer to its budget; writes $work/<fuzzer>.row (the table's row) and .findings.
soak_one() {
  local fuzzer=$1
  local scratch="$work/$fuzzer" log="$work/$fuzzer.log" artifacts="$work/$fuzzer.artifacts"
  mkdir -p "$scratch" "$artifacts"
  local flags
  mapfile -t flags < <(options_flags "$fuzzer")
  local wall_cap
  wall_cap=$(awk -v b="$budget_s" -v f="$wall_factor" 'BEGIN { c = int(b * f + 0.5); print (c < b ? b : c) }')
  local start=$(date +%s)
  "$bin_dir/$fuzzer" "${flags[@]}" -max_total_time="$wall_cap" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$scratch" "$repo/corpus/$fuzzer" >"$log" 2>&1 &
  local pid=$! cpu=0 rss first_minute_rss= peak_sampled=0 stopped=
  while kill -0 "$pid" 2>/dev/null; do
    cpu=$(cpu_seconds "$pid")
    rss=$(rss_mb "$pid")
    if [[ -n $rss ]]; then
      (( rss > peak_sampled )) && peak_sampled=$rss
      [[ -z $first_minute_rss ]] && (( cpu >= 60 || cpu >= budget_s / 2 )) && first_minute_rss=$rss
      echo "rss-sample: cpu ${cpu} s, rss ${rss} MB" >>"$work/$fuzzer.rss"
    fi
    local elapsed=$(( $(date +%s) - start ))
    if [[ -z $stopped ]] && (( cpu >= budget_s )); then
      kill -INT "$pid" 2>/dev/null || true
      stopped=$elapsed
    fi
    if (( elapsed > wall_cap + 60 )) || { [[ -n $stopped ]] && (( elapsed > stopped + 60 )); }; then
      echo "fuzz-soak: $fuzzer did not stop; killed" >>"$log"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 1
  done
  local rc=0
  wait "$pid" || rc=$?
  local wall=$(( $(date +%s) - start ))

  # libFuzzer's final stats, and its last status line for coverage and corpus.
  local execs peak status cov ft corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
  status=$(grep -E '^#[0-9]+[[:space:]]+[A-Z]+[[:space:]]+cov:' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$status")
  [[ -z $execs ]] && execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status")
  [[ -z $peak ]] && peak=$peak_sampled
  local growth="-"
  [[ -n $first_minute_rss ]] && growth=$(( peak_sampled - first_minute_rss ))
  local rate="-"
  (( cpu > 0 )) && [[ -n $execs ]] && rate=$(( execs / cpu ))

  # A finding stays in the corpus as a regression input; the committed corpus is otherwise
  # never written.
  local findings=() f
  local stalls=()
  for f in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
    [[ -e $f ]] || continue
    # libFuzzer's -timeout is wall time: a fuzzer starved of CPU on a busy machine "times out"
    # on an input that runs in milliseconds. A timeout counts only when the input, replayed
    # alone, still takes longer than the timeout.
    if [[ $(basename "$f") == timeout-* ]] &&
      timeout --kill-after=10 60 "$bin_dir/$fuzzer" -timeout=25 -runs=1 "$f" >"$work/$fuzzer.replay" 2>&1; then
      stalls+=("$(basename "$f") did not time out on replay ($(sed -n 's/.* in \([0-9]*\) ms$/\1/p' "$work/$fuzzer.replay" | tail -n 1) ms): the machine stalled")
      continue
    fi
    cp "$f" "corpus/$fuzzer/"
    findings+=("$(basename "$f")")
  done
  if (( ${#findings[@]} == 0 )) && (( rc != 0 && rc != 72 )) && ! grep -q '^Done [0-9]* runs' "$log"; then
    findings+=("exit $rc without an artifact (see the log)")
  fi
  : >"$work/$fuzzer.findings"
  (( ${#findings[@]} > 0 )) && printf '%s\n' "${findings[@]}" >"$work/$fuzzer.findings"
  local found="none"
  (( ${#findings[@]} > 0 )) && found=$(IFS=,; echo "${findings[*]}" | sed 's/,/, /g')
  (( ${#stalls[@]} > 0 )) && found+="; not a finding: $(IFS=,; echo "${stalls[*]}" | sed 's/,/, /g')"
  # RSS over the run: the first sample at or past each tenth of the CPU budget, so that growth
  # that levels off can be told from growth that does not ("-" where the run never got there).
  local curve
  curve=$(awk -v b="$budget_s" '
    BEGIN { next_k = 1 }
    { cpu = $3 + 0; rss = $6 + 0
      while (next_k <= 10 && cpu >= b * next_k / 10) { out = out (out == "" ? "" : " | ") rss; next_k++ } }
    END { while (next_k <= 10) { out = out (out == "" ? "" : " | ") "-"; next_k++ }; print out }' \
    "$work/$fuzzer.rss" 2>/dev/null) || curve="- | - | - | - | - | - | - | - | - | -"
  printf '| %s | %s |\n' "$fuzzer" "$curve" >"$work/$fuzzer.curve"
  printf '| %s | %d:%02d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$fuzzer" $((cpu / 60)) $((cpu % 60)) \
    "$(( wall / 60 )):$(printf %02d $(( wall % 60 )))" "${execs:--}" "$rate" "${cov:--}" "${ft:--}" "${corp:--}" \
    "${peak:--}" "$growth" "$found" >"$work/$fuzzer.row"
  echo "fuzz-soak: $fuzzer: ${cpu} s CPU, ${execs:-?} runs, cov ${cov:-?} ft ${ft:-?}, peak ${peak:-?} MB, findings: $found" >&2
  if (( ${#findings[@]} > 0 )); then
    mkdir -p "$(dirname "$out")"
    cp "$log" "$(dirname "$out")/fuzz_soak_$fuzzer.log"
  fi
}

# Each fuzzer's row of one table (what soak_one wrote to $work/<fuzzer>.EXT), or "did not run"
# and the other cells empty (both tables have eleven columns).
table_rows() {
  local ext=$1 fuzzer
  for fuzzer in "${fuzzers[@]}"; do
    if [[ -f "$work/$fuzzer.$ext" ]]; then cat "$work/$fuzzer.$ext"; else echo "| $fuzzer | did not run ||||||||||"; fi
  done
}

echo "fuzz-soak: ${#fuzzers[@]} fuzzers, ${minutes} CPU minutes each, $jobs at a time, from $bin_dir" >&2
start=$(date +%s)
running=0
for fuzzer in "${fuzzers[@]}"; do
  if (( running >= jobs )); then
    wait -n || true
    running=$((running - 1))
  fi
  soak_one "$fuzzer" &
  running=$((running + 1))
done
wait || true
total=$(( $(date +%s) - start ))

mkdir -p "$(dirname "$out")"
{
  echo "# In-process fuzzers: soak"
  echo
  echo "Each fuzzer ran for ${minutes} CPU minutes under ASan and UBSan (UBSan fatal), ${jobs} at a time,"
  echo "from its committed corpus with its dictionary and options, new inputs to a scratch folder."
  echo "Written by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M') UTC,"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), on $(nproc) cores (load average"
  echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end); $((total / 60)) min $((total % 60)) s wall in all."
  echo
  echo "CPU time is the fuzzer process's user and system time; exec/s is executions per CPU second"
  echo "(libFuzzer's own figure divides by wall time, which a shared machine stretches). cov and ft"
  echo "are libFuzzer's edges and features at the end, corpus its in-memory corpus (inputs/bytes)."
  echo "RSS growth is the peak minus the RSS after the first CPU minute (or half the budget):"
  echo "ASan's quarantine (256 MB of freed memory) fills in that first minute."
  echo
  echo "| fuzzer | CPU time | wall | executions | exec/s (CPU) | cov | ft | corpus | peak RSS (MB) | RSS growth after the first minute (MB) | findings |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  table_rows row
  echo
  echo "RSS (MB) after each tenth of the CPU budget (sampled once a second):"
  echo
  echo "| fuzzer | 10 % | 20 % | 30 % | 40 % | 50 % | 60 % | 70 % | 80 % | 90 % | 100 % |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  table_rows curve
} >"$out"
echo "fuzz-soak: the table is in $out" >&2

failed=0
for fuzzer in "${fuzzers[@]}"; do
  if [[ ! -f "$work/$fuzzer.row" ]] || [[ -s "$work/$fuzzer.findings" ]]; then
    failed=1
    while IFS= read -r finding; do
      echo "fuzz-soak: $fuzzer found $finding; kept in corpus/$fuzzer/" >&2
    done <"$work/$fuzzer.findings"
  fi
done
exit $failed
