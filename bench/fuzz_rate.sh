#!/usr/bin/env bash
# The network fuzzer's speed against the reference server, next to wrk's request rate on the
# same endpoint in the same run: how much of a server's capacity the fuzzer uses, and what its
# own work (mutation, TLS, signing, oracles, liveness probes) costs.
#
#   bench/fuzz_rate.sh [SECONDS]     default 60 seconds of fuzzing, then 20 s of wrk
#
# It serves the reference server over HTTPS with identity mode none (wrk has no client
# certificates; the fuzzer's Mdm-Signature and mTLS work would not be comparable), fuzzes it
# with `mdmconform fuzz --target`, then lets wrk PUT a well-formed Idle from the fuzz device to
# the same /mdm endpoint on one kept-alive connection (like the fuzzer) and on eight.
# Needs build/dev/mdmconform, the target_fuzzer binary (scripts/build.sh fuzz --target
# target_fuzzer, or MDMC_TARGET_FUZZER) and wrk (installed from Debian when missing, as root).
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

"$bin" fuzz --target "$work/profile.yaml" --max-time "$seconds" --out "$work/run" --quiet --seed 1 || true
fuzz_rate=$(jq -r '.exec_per_sec' "$work/run/fuzz/summary.json")
fuzz_runs=$(jq -r '.executions' "$work/run/fuzz/summary.json")
corpus=$(jq -r '.corpus_size' "$work/run/fuzz/summary.json")

udid=23EB7CD8-5567-5E97-827F-06E4E4C456B2
cat >"$work/idle.lua" <<LUA
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/x-apple-aspen-mdm; charset=UTF-8"
wrk.body = [[<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>Status</key><string>Idle</string><key>UDID</key><string>$udid</string></dict></plist>]]
LUA
wrk1=$(wrk -t1 -c1 -d20s -s "$work/idle.lua" "https://127.0.0.1:$port/mdm" | awk '/Requests\/sec/ {print $2}')
wrk8=$(wrk -t2 -c8 -d20s -s "$work/idle.lua" "https://127.0.0.1:$port/mdm" | awk '/Requests\/sec/ {print $2}')
echo "| measure | rate |"
echo "|---|---|"
echo "| mdmconform fuzz, 1 job, ${seconds} s (${fuzz_runs} inputs, corpus ${corpus}) | ${fuzz_rate} inputs/s |"
echo "| wrk, Idle on 1 connection, 20 s | ${wrk1} requests/s |"
echo "| wrk, Idle on 8 connections, 20 s | ${wrk8} requests/s |"
