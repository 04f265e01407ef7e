#!/usr/bin/env bash
# Fuzz corpus growth for declarative inputs (issue 18's measure): the network fuzzer against the
# built-in reference server, counting the corpus inputs that are DeclarativeManagement check-ins
# at the start (the seeds) and at the end, by Endpoint; then declarative_client_fuzzer in process,
# its exec/s, coverage and corpus at the start and the end. Writes bench/results/fuzz_ddm_corpus.md.
#
#   bench/fuzz_ddm_corpus.sh [SECONDS] [CLIENT_SECONDS]    defaults 600 and 300
#
# Needs build/dev/mdmconform, the throughput target_fuzzer (scripts/build.sh fuzz-fast --target
# target_fuzzer; or MDMC_TARGET_FUZZER) and build/fuzz/fuzzers/declarative_client_fuzzer
# (scripts/build.sh fuzz --target declarative_client_fuzzer). Both runs use seed 1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
client_seconds=${2:-300}
bin=${BENCH_BIN:-build/dev/mdmconform}
client_fuzzer=${CLIENT_FUZZER:-build/fuzz/fuzzers/declarative_client_fuzzer}
[[ -x "$bin" ]] || { echo "fuzz_ddm_corpus: no mdmconform at $bin" >&2; exit 2; }
[[ -x "$client_fuzzer" ]] || { echo "fuzz_ddm_corpus: no declarative_client_fuzzer at $client_fuzzer" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=bench/results/fuzz_ddm_corpus.md

# Counts the DeclarativeManagement check-ins among a folder's inputs, by Endpoint, and how many
# of the status ones carry Data that is JSON. An input plistlib cannot read (a date out of its
# range, byte mutations) counts as declarative when its bytes name the MessageType.
classify() {  # DIR -> one markdown table row: total | declarative | by endpoint | status with JSON Data
  python3 - "$1" <<'PY'
import collections, json, os, plistlib, sys
d = sys.argv[1]
total = ddm = status_json = 0
by = collections.Counter()
for name in os.listdir(d):
    raw = open(os.path.join(d, name), "rb").read()
    total += 1
    try:
        m = plistlib.loads(raw)
    except Exception:
        m = None
    if isinstance(m, dict):
        if m.get("MessageType") != "DeclarativeManagement":
            continue
    elif b"DeclarativeManagement" not in raw:
        continue
    ddm += 1
    if not isinstance(m, dict):
        by["(unreadable plist)"] += 1
        continue
    e = m.get("Endpoint")
    if not isinstance(e, str):
        kind = "(no Endpoint string)"
    elif e in ("tokens", "declaration-items", "status"):
        kind = e
    elif e.startswith("declaration/") and e.count("/") == 2 and e.split("/")[1] in ("activation", "configuration", "asset", "management"):
        kind = "declaration/<group>/<id>"
    else:
        kind = "(other)"
    by[kind] += 1
    if e == "status" and isinstance(m.get("Data"), bytes):
        try:
            json.loads(m["Data"])
            status_json += 1
        except Exception:
            pass
print("%d | %d | %s | %d" % (total, ddm, ", ".join("%s %d" % kv for kv in sorted(by.items())), status_json))
PY
}

seeds_row=$(classify corpus/target_fuzzer)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
command=("$bin" fuzz --max-time "$seconds" --seed 1 --out "$work/run" --quiet)
"${command[@]}" >"$work/fuzz.out" 2>&1 || true
summary="$work/run/fuzz/summary.json"
run_row=$(classify "$work/run/fuzz/corpus")
figures=$(jq -r '"\(.executions) runs, \(.exec_per_sec) exec/s, corpus \(.corpus_size), \(.findings | length) finding(s), fuzzer exit \(.fuzzer_exit)"' "$summary")
findings=$(jq -r '.findings[]? | "- \(.oracle // .id): \(.summary // .title // "")"' "$summary" 2>/dev/null | head -n 10 || true)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$work/client"
client_command=("$client_fuzzer" -max_total_time="$client_seconds" -seed=1 -dict=fuzzers/declarative_client_fuzzer.dict
  -max_len=65536 -print_final_stats=1 "$work/client" corpus/declarative_client_fuzzer)
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "${client_command[@]}" >"$work/client.log" 2>&1 || true
client_seeds=$(find corpus/declarative_client_fuzzer -maxdepth 1 -type f | wc -l)
inited=$(grep -m1 'INITED' "$work/client.log" || echo "?")
done_line=$(grep -E '#[0-9]+.*DONE' "$work/client.log" | tail -n 1 || true)
[[ -n "$done_line" ]] || done_line=$(grep -E '^#[0-9]+' "$work/client.log" | tail -n 1 || echo "?")
client_new=$(find "$work/client" -maxdepth 1 -type f | wc -l)
execs_per_sec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/client.log")
crashes=$(grep -c 'ERROR: libFuzzer\|declarative_client_fuzzer: ' "$work/client.log" || true)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

{
  echo "# Fuzz corpus growth for declarative inputs"
  echo
  echo "Written by \`bench/fuzz_ddm_corpus.sh $seconds $client_seconds\` on $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD)."
  echo "The machine: $(nproc) cores, shared with other builds and a soak; load average (1, 5, 15 min) $load_before"
  echo "before the network run, $load_after after it, $load_end after the in-process run."
  echo
  echo "## Network fuzzer against the built-in reference server"
  echo
  echo "\`${command[*]/$work/\$TMP}\` (the fuzz-fast target_fuzzer): $figures."
  echo
  echo "| inputs | all | DeclarativeManagement check-ins | by Endpoint | status reports whose Data is JSON |"
  echo "|---|---|---|---|---|"
  echo "| at the start: the seeds, corpus/target_fuzzer | $seeds_row |"
  echo "| after ${seconds} s: the run's corpus (<out>/fuzz/corpus: the seeds, copied in at the start, and what the run added) | $run_row |"
  echo
  echo "Growth: $(( $(echo "$run_row" | cut -d'|' -f2) - $(echo "$seeds_row" | cut -d'|' -f2) )) declarative inputs, $(( $(echo "$run_row" | cut -d'|' -f1) - $(echo "$seeds_row" | cut -d'|' -f1) )) inputs in all."
  if [[ -n "$findings" ]]; then
    echo
    echo "Findings:"
    echo
    echo "$findings"
  fi
  echo
  echo "## declarative_client_fuzzer (ASan and UBSan, scripts/build.sh fuzz)"
  echo
  echo "\`UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ${client_command[*]/$work/\$TMP}\`"
  echo
  echo "- seeds: $client_seeds (corpus/declarative_client_fuzzer)"
  echo "- at the start: \`$inited\`"
  echo "- after ${client_seconds} s: \`$done_line\`"
  echo "- new corpus inputs: $client_new; average exec/s: ${execs_per_sec:-?}; oracle failures or crashes: $crashes"
} >"$out"
cat "$out"
