#!/usr/bin/env bash
# P3 (docs/load.md): a fleet of DEVICES Macs with USERS users each (20,000 channels by default:
# 5,000 devices x 3 users, plus each device) held at once by one `mdmconform load` process,
# against the reference server started with its bounds raised by flag. Prints both processes'
# peak RSS (/usr/bin/time), the run's console summary, and the error rate.
#
#   bench/load_p3.sh [BINARY] [SECONDS] [DEVICES] [USERS]   default: build/dev/mdmconform 60 5000 3
#   THINK=10 CPM=600 bench/load_p3.sh ...                   mean think time (s), commands per minute
#
# Every channel keeps its own connection while it can: the open-file limit (ulimit -n) bounds
# both processes, and the harness leaves 256 descriptors of its limit free.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/dev/mdmconform}
seconds=${2:-60}
devices=${3:-5000}
users=${4:-3}
think=${THINK:-10}
cpm=${CPM:-600}
[[ -x "$bin" ]] || { echo "load_p3: no binary at $bin" >&2; exit 2; }

work=$(mktemp -d)
server_pid=
cleanup() { [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

managed=7D9F5A0E-0B52-4C39-9A49-2E1C6A3B8D10
/usr/bin/time -f '%e %U %S %M' -o "$work/serve.time" "$bin" serve --port 0 --threads 2 \
  --max-devices $((devices + 1000)) --max-queued-commands 1000000 --manage-network-user "$managed" \
  >"$work/serve.log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|^reference MDM server on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$work/serve.log")
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "$port" ]] || { echo "load_p3: the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }
base="http://127.0.0.1:$port"
cat >"$work/target.yaml" <<YAML
schema_version: 1
name: reference-p3
urls:
  check_in: $base/checkin
  server: $base/mdm
topic: com.apple.mgmt.External.mdmconform
identity:
  mode: none
admin:
  enqueue:
    method: PUT
    url: $base/v1/enqueue/{channel}?nopush=1
    expect_status: [200]
policy:
  network_users:
    managed: [$managed]
YAML

echo "load_p3: $devices devices x $users users, ${seconds} s, think ${think} s, $cpm commands/min; ulimit -n $(ulimit -n)"
rc=0
/usr/bin/time -f '%e %U %S %M' -o "$work/load.time" "$bin" load --target "$work/target.yaml" --devices "$devices" \
  --users-per-device "$users" --duration "$seconds" --think "$think" --commands-per-minute "$cpm" \
  --out "$work/load" >"$work/load.out" 2>&1 || rc=$?
cat "$work/load.out"
# The server is /usr/bin/time's child: time itself ignores SIGINT while it waits.
pkill -INT -P "$server_pid" || true
wait "$server_pid" || true
server_pid=
[[ -f "$work/load/summary.md" ]] && cat "$work/load/summary.md"
awk '{ printf "harness: %.1f s wall, %.1f s CPU, peak RSS %.0f MiB\n", $1, $2 + $3, $4 / 1024 }' "$work/load.time"
awk '{ printf "server:  %.1f s wall, %.1f s CPU, peak RSS %.0f MiB\n", $1, $2 + $3, $4 / 1024 }' "$work/serve.time"
echo "load exit code: $rc"
