#!/usr/bin/env bash
# The network fuzzer's speed against the reference server, next to wrk's request rate on the
# same endpoint in the same run: how much of a server's capacity the fuzzer uses, and what its
# own work (mutation, TLS, oracles, liveness probes) costs.
#
#   bench/fuzz_rate.sh [SECONDS]     default 60 seconds of fuzzing per job count, then 20 s of wrk each
#
# It serves the reference server over HTTPS with identity mode none (wrk has no client
# certificates; the fuzzer's Mdm-Signature and mTLS work would not be comparable), fuzzes it
# with `mdmconform fuzz --target` with --jobs 1 and then --jobs 2, then lets wrk PUT a
# well-formed Idle from the fuzz device to the same /mdm endpoint on one kept-alive connection
# (like one fuzzing job) and on eight, and then replay the one-job run's corpus on one
# connection (what the server can take of the inputs the fuzzer sends). P4 holds when the
# one-job rate is at least half of wrk's one-connection rate with the Idle.
# Needs build/dev/mdmconform, a target_fuzzer binary (the one `mdmconform fuzz` finds: the
# throughput build from scripts/build.sh fuzz-fast --target target_fuzzer first; or
# MDMC_TARGET_FUZZER) and wrk (installed from Debian when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
bin=${BENCH_BIN:-build/dev/mdmconform}
[[ -x "$bin" ]] || { echo "fuzz_rate: no mdmconform at $bin" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }
fi
work=$(mktemp -d)
server_pid=
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin" serve --tls-dir "$work/tls" --identity-mode none --port 0 >"$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do grep -q "reference MDM server on" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*https:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve.log" | head -1)
[[ -n "$port" ]] || { echo "fuzz_rate: the reference server did not start" >&2; cat "$work/serve.log" >&2; exit 3; }
cat >"$work/profile.yaml" <<YAML
schema_version: 1
name: reference-rate
urls:
  check_in: https://127.0.0.1:$port/checkin
  server: https://127.0.0.1:$port/mdm
topic: com.apple.mgmt.External.mdmconform
tls:
  ca: $work/tls/ca.crt
identity:
  mode: none
admin:
  enqueue:
    url: https://127.0.0.1:$port/v1/enqueue/{channel}
YAML

fuzz_run() {  # JOBS -> "executions exec_per_sec corpus" of a fresh corpus
  local out="$work/run-$1"
  "$bin" fuzz --target "$work/profile.yaml" --max-time "$seconds" --jobs "$1" --out "$out" --quiet --seed 1 ||
    true
  # A run that stopped early (a finding, a job that could not enroll) says why on stderr.
  if [[ $(jq -r '.fuzzer_exit' "$out/fuzz/summary.json") != 0 || $(jq -r '.findings | length' "$out/fuzz/summary.json") != 0 ]]; then
    echo "fuzz_rate: --jobs $1 stopped early (exit $(jq -r '.fuzzer_exit' "$out/fuzz/summary.json")); its log ends:" >&2
    grep -v NEW_FUNC "$out/fuzz/fuzzer.log" | tail -n 8 >&2
  fi
  jq -r '"\(.executions) \(.exec_per_sec) \(.corpus_size)"' "$out/fuzz/summary.json"
}
read -r runs1 rate1 corpus1 < <(fuzz_run 1)
read -r runs2 rate2 corpus2 < <(fuzz_run 2)
# The binary mdmconform picks when MDMC_TARGET_FUZZER is unset (harness/cli/fuzz_command.cpp).
fuzzer=${MDMC_TARGET_FUZZER:-}
for candidate in build/fuzz-fast/fuzzers/target_fuzzer build/fuzz/fuzzers/target_fuzzer; do
  [[ -z "$fuzzer" && -x "$candidate" ]] && fuzzer=$candidate
done

udid=23EB7CD8-5567-5E97-827F-06E4E4C456B2
cat >"$work/idle.lua" <<LUA
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/x-apple-aspen-mdm; charset=UTF-8"
wrk.body = [[<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>$udid</string></dict></plist>]]
LUA
wrk1=$(wrk -t1 -c1 -d${WRK_SECONDS:-20}s -s "$work/idle.lua" "https://127.0.0.1:$port/mdm" | awk '/Requests\/sec/ {print $2}')
# The same server asked what the fuzzer asks: wrk replays the --jobs 1 run's corpus (every
# input the fuzzer kept, seeds included) in turn on one connection, each to /checkin when it
# names a MessageType and to /mdm otherwise (endpoint_for's rule, read from the bytes). A fuzz
# input costs the server more than an Idle (bench/results/fuzz_rate.md): this is the rate the
# server can take of such inputs, beside which the fuzzer's own cost shows.
find "$work/run-1/fuzz/corpus" -type f | sort > "$work/corpus.list"
cat >"$work/replay.lua" <<'LUA'
local bodies, paths, n = {}, {}, 0
local list = io.open(os.getenv("FUZZ_RATE_CORPUS_LIST"))
for name in list:lines() do
  local f = io.open(name, "rb")
  if f then
    local body = f:read("*a")
    f:close()
    n = n + 1
    bodies[n] = body
    paths[n] = body:find("MessageType", 1, true) and "/checkin" or "/mdm"
  end
end
list:close()
local i = 0
local headers = { ["Content-Type"] = "application/x-apple-aspen-mdm; charset=UTF-8" }
request = function()
  i = i % n + 1
  return wrk.format("PUT", paths[i], headers, bodies[i])
end
LUA
wrk_corpus=$(FUZZ_RATE_CORPUS_LIST="$work/corpus.list" wrk -t1 -c1 -d${WRK_SECONDS:-20}s -s "$work/replay.lua" "https://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
wrk8=$(wrk -t2 -c8 -d${WRK_SECONDS:-20}s -s "$work/idle.lua" "https://127.0.0.1:$port/mdm" | awk '/Requests\/sec/ {print $2}')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f %%", 100 * a / b; else print "-" }'; }
echo "| measure | rate | of wrk |"
echo "|---|---|---|"
echo "| mdmconform fuzz --jobs 1, ${seconds} s (${runs1} inputs, corpus ${corpus1}) | ${rate1} inputs/s | $(ratio "$rate1" "$wrk1") of 1 connection |"
echo "| mdmconform fuzz --jobs 2, ${seconds} s (${runs2} inputs, corpus ${corpus2}) | ${rate2} inputs/s | $(ratio "$rate2" "$wrk8") of 8 connections |"
echo "| wrk, Idle on 1 connection, ${WRK_SECONDS:-20} s | ${wrk1} requests/s | |"
echo "| wrk, Idle on 8 connections, ${WRK_SECONDS:-20} s | ${wrk8} requests/s | |"
echo "| wrk, the --jobs 1 run's corpus ($(wc -l < "$work/corpus.list") inputs) replayed on 1 connection, ${WRK_SECONDS:-20} s | ${wrk_corpus} requests/s | fuzz --jobs 1: $(ratio "$rate1" "$wrk_corpus") of it |"
echo
echo "fuzzer: ${fuzzer:-the one mdmconform fuzz found}; P4 (jobs 1 >= 50 % of wrk on 1 connection): $(awk -v a="$rate1" -v b="$wrk1" 'BEGIN { print (b > 0 && a >= b / 2) ? "holds" : "fails" }')"
