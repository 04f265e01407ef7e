#!/usr/bin/env bash
# P2 (docs/load.md): the harness's CPU per exchange in steady state against wrk's CPU per request
# on the same endpoint, both measured with /usr/bin/time in this one script run. The endpoint:
# the reference server's /mdm over plain HTTP in identity mode none, answering an enrolled
# device's Idle with an empty 200, on kept-alive connections. wrk PUTs one enrolled device's Idle
# body; `mdmconform load` runs devices without users whose channels each loop on Idle with no
# think time (each series one exchange), no commands.
#
#   bench/load_p2.sh [BINARY] [SECONDS] [CONNECTIONS]   default: build/dev/mdmconform 20 64
#
# Needs wrk and /usr/bin/time (Debian packages wrk and time: scripts/install-deps.sh --bench).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/dev/mdmconform}
seconds=${2:-20}
connections=${3:-64}
[[ -x "$bin" ]] || { echo "load_p2: no binary at $bin" >&2; exit 2; }
command -v wrk >/dev/null || { echo "load_p2: wrk is not installed (apt-get install wrk)" >&2; exit 2; }

work=$(mktemp -d)
server_pid=
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The server on its own threads; the port it prints. Bounded wait: 10 s.
"$bin" serve --port 0 --threads 2 --max-devices 100000 >"$work/serve.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|^reference MDM server on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/serve.log")
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "$port" ]] || { echo "load_p2: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
base="http://127.0.0.1:$port"

# One enrolled device for wrk: Authenticate, TokenUpdate, then its Idle over and over.
udid=0A1B2C3D-0000-4000-8000-00000000B2B2
plist() { printf '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0"><dict>%s</dict></plist>\n' "$1"; }
plist "<key>MessageType</key><string>Authenticate</string><key>UDID</key><string>$udid</string><key>Topic</key><string>com.apple.mgmt.External.mdmconform</string>" >"$work/auth.plist"
plist "<key>MessageType</key><string>TokenUpdate</string><key>UDID</key><string>$udid</string><key>Topic</key><string>com.apple.mgmt.External.mdmconform</string><key>Token</key><data>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=</data><key>PushMagic</key><string>B2B2</string>" >"$work/token.plist"
plist "<key>Status</key><string>Idle</string><key>UDID</key><string>$udid</string>" >"$work/idle.plist"
for f in auth token; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/x-apple-aspen-mdm-checkin' \
    --data-binary "@$work/$f.plist" "$base/checkin")
  [[ "$code" == 200 ]] || { echo "load_p2: $f answered $code" >&2; exit 1; }
done
code=$(curl -s -o "$work/idle.out" -w '%{http_code}' -X PUT -H 'Content-Type: application/x-apple-aspen-mdm' \
  --data-binary "@$work/idle.plist" "$base/mdm")
[[ "$code" == 200 && ! -s "$work/idle.out" ]] || { echo "load_p2: Idle answered $code with $(wc -c <"$work/idle.out") bytes" >&2; exit 1; }
cat >"$work/idle.lua" <<LUA
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/x-apple-aspen-mdm"
local f = io.open("$work/idle.plist", "rb")
wrk.body = f:read("*all")
f:close()
LUA

cat >"$work/target.yaml" <<YAML
schema_version: 1
name: reference-p2
urls:
  check_in: $base/checkin
  server: $base/mdm
topic: com.apple.mgmt.External.mdmconform
identity:
  mode: none
YAML

# CPU seconds (user + system) of a command, from /usr/bin/time.
cpu_of() { awk '{ print $1 + $2 }' "$1"; }

/usr/bin/time -f '%U %S %M' -o "$work/wrk.time" wrk -t1 -c"$connections" -d"${seconds}s" -s "$work/idle.lua" "$base/mdm" >"$work/wrk.out"
wrk_requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$work/wrk.out")
wrk_non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\)/\1/p' "$work/wrk.out")

/usr/bin/time -f '%U %S %M' -o "$work/load.time" "$bin" load --target "$work/target.yaml" --devices "$connections" \
  --users-per-device 0 --duration "$seconds" --think 0 --commands-per-minute 0 --threads 1 \
  --max-in-flight "$connections" --drain 0 --out "$work/load" >"$work/load.out" 2>&1 || { cat "$work/load.out" >&2; exit 1; }
load_exchanges=$(sed -n 's/^\([0-9]*\) exchanges in .*/\1/p' "$work/load.out")

wrk_cpu=$(cpu_of "$work/wrk.time")
load_cpu=$(cpu_of "$work/load.time")
awk -v wc="$wrk_cpu" -v wr="$wrk_requests" -v lc="$load_cpu" -v lr="$load_exchanges" -v s="$seconds" -v c="$connections" \
    -v bad="${wrk_non2xx:-0}" -v lrss="$(awk '{print $3}' "$work/load.time")" 'BEGIN {
  printf "| client | requests in %d s on %d connections | per second | CPU s | CPU us per request | peak RSS MiB |\n", s, c
  printf "|---|---|---|---|---|---|\n"
  printf "| wrk -t1 | %d (non-2xx %d) | %.0f | %.2f | %.1f | - |\n", wr, bad, wr / s, wc, wc * 1e6 / wr
  printf "| mdmconform load --threads 1 | %d | %.0f | %.2f | %.1f | %.0f |\n", lr, lr / s, lc, lc * 1e6 / lr, lrss / 1024
  printf "\nratio (harness CPU per exchange / wrk CPU per request): %.2f\n", (lc / lr) / (wc / wr)
}'
