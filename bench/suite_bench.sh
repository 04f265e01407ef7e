#!/usr/bin/env bash
# The whole suite against the built-in reference server, with --jobs 1 and --jobs 2, a few runs
# each: the wall time of every run, and the time per case (each case's elapsed_ms in report.json,
# median over the runs). Run by hand, not by ctest: the numbers depend on the machine.
#
#   bench/suite_bench.sh [BINARY] [RUNS]     default: build/dev/mdmconform, 5 runs per job count
#   JOBS="1 2 4" bench/suite_bench.sh        other job counts
#   RUN_ARGS="--exclude psh/" bench/suite_bench.sh   more arguments for every `run` (word-split)
#
# Run i of every job count uses seed i, so each job count runs the same synthetic devices.
# Needs only bash and awk: report.json's layout is fixed (2-space indent, keys in a fixed order),
# so each case's "id" and "elapsed_ms" sit at six spaces, deeper than nothing else of theirs.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-build/dev/mdmconform}
runs=${2:-5}
job_counts=${JOBS:-"1 2"}
read -r -a run_args <<<"${RUN_ARGS:-}"
[[ -x "$bin" ]] || { echo "suite_bench: no binary at $bin (build it, or pass its path)" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cases_file="$out/cases.txt"  # lines: JOBS CASE_ID MS
walls_file="$out/walls.txt"  # lines: JOBS WALL_MS
: >"$cases_file"
: >"$walls_file"

# Milliseconds between two $EPOCHREALTIME readings.
elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "suite_bench: $bin, $runs run(s) per job count, $(nproc) CPU(s)"
for jobs in $job_counts; do
  for ((i = 1; i <= runs; i++)); do
    dir="$out/jobs$jobs-run$i"
    start=$EPOCHREALTIME
    status=0
    "$bin" run --seed "$i" --jobs "$jobs" --out "$dir" "${run_args[@]}" >"$out/log.txt" 2>&1 || status=$?
    end=$EPOCHREALTIME
    if ((status != 0)); then
      echo "suite_bench: run $i with --jobs $jobs exited $status:" >&2
      tail -n 20 "$out/log.txt" >&2
      exit 1
    fi
    wall=$(elapsed_ms "$start" "$end")
    awk -v jobs="$jobs" '
      /^      "id": "/        { id = $2; gsub(/[",]/, "", id) }
      /^      "elapsed_ms": / { ms = $2; gsub(/,/, "", ms); print jobs, id, ms }
    ' "$dir/report.json" >"$out/this.txt"
    cat "$out/this.txt" >>"$cases_file"
    echo "$jobs $wall" >>"$walls_file"
    n=$(wc -l <"$out/this.txt")
    per_case=$(awk '{ print $3 }' "$out/this.txt" | median)
    printf 'jobs %-2s run %d: %5d ms wall, %d cases, median %s ms per case\n' "$jobs" "$i" "$wall" "$n" "$per_case"
  done
done

echo
printf '%-34s' "case (median ms over runs)"
for jobs in $job_counts; do printf '  jobs %-3s' "$jobs"; done
echo
for id in $(awk '{ print $2 }' "$cases_file" | sort -u); do
  printf '%-34s' "$id"
  for jobs in $job_counts; do
    printf '  %8s' "$(awk -v j="$jobs" -v id="$id" '$1 == j && $2 == id { print $3 }' "$cases_file" | median)"
  done
  echo
done

echo
for jobs in $job_counts; do
  wall=$(awk -v j="$jobs" '$1 == j { print $2 }' "$walls_file" | median)
  per_case=$(awk -v j="$jobs" '$1 == j { print $3 }' "$cases_file" | median)
  sum=$(awk -v j="$jobs" -v r="$runs" '$1 == j { s += $3 } END { printf "%.0f", s / r }' "$cases_file")
  echo "jobs $jobs: median wall $wall ms per run; median $per_case ms per case; cases' times add up to $sum ms per run"
done
