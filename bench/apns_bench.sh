#!/usr/bin/env bash
# Pushes per second the fake APNs (harness/push) takes from h2load, beside h2load against
# nghttpd on the same machine: nghttpd serving a static file (GET) and echoing the same POST
# body (--echo-upload). h2load has no client-certificate option, so the fake APNs runs with
# provider-token auth: every push carries `authorization: bearer <ES256 JWT>`, verified per
# push. Run by hand, not by ctest: the numbers depend on the machine.
#
#   bench/apns_bench.sh [BUILD_DIR] [REQUESTS]   default: build/dev, 20000
#   CLIENTS=4 STREAMS=10 bench/apns_bench.sh     h2load -c and -m (defaults 4 and 10)
#
# Needs h2load and nghttp (nghttp2-client), nghttpd (nghttp2-server) and openssl; the build
# must have the apns_bench_server target (cmake --build BUILD_DIR --target apns_bench_server).
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build/dev}
requests=${2:-20000}
clients=${CLIENTS:-4}
streams=${STREAMS:-10}
server_bin=$build/bench/apns_bench_server
for tool in h2load nghttpd openssl; do
  command -v "$tool" >/dev/null || { echo "apns_bench: $tool is not installed" >&2; exit 2; }
done
[[ -x "$server_bin" ]] || { echo "apns_bench: no $server_bin (build the apns_bench_server target)" >&2; exit 2; }

out=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT

wait_for_file() {
  for _ in $(seq 100); do [[ -s "$1" ]] && return 0; sleep 0.1; done
  echo "apns_bench: $1 did not appear" >&2
  exit 1
}

# "req/s" and "succeeded" from one h2load run.
summarise() {
  awk '/^finished in/ { rate = $4 } /^requests:/ { ok = $8 } /^status codes:/ { s2 = $3 }
       END { printf "%s req/s, %s succeeded, %s 2xx\n", rate, ok, s2 }'
}

"$server_bin" "$out" >"$out/server.log" 2>&1 &
pids+=($!)
wait_for_file "$out/port"
port=$(cat "$out/port")
token=$(cat "$out/token")
topic=$(cat "$out/topic")
device=c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out/key.pem" -out "$out/cert.pem" \
  -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
mkdir -p "$out/docroot/3/device"
cp "$out/body.json" "$out/docroot/index.json"
nghttpd_port=$((port + 1))
nghttpd -a 127.0.0.1 -n 1 --echo-upload -d "$out/docroot" "$nghttpd_port" "$out/key.pem" "$out/cert.pem" \
  >"$out/nghttpd.log" 2>&1 &
pids+=($!)
sleep 0.5

common=(-n "$requests" -c "$clients" -m "$streams")
echo "h2load ${common[*]}, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'fake APNs, POST push (bearer JWT):  '
h2load "${common[@]}" -d "$out/body.json" -H "authorization: bearer $token" -H "apns-topic: $topic" \
  -H 'apns-push-type: mdm' -H 'apns-priority: 10' "https://127.0.0.1:$port/3/device/$device" | summarise
printf 'nghttpd, GET static file:           '
h2load "${common[@]}" "https://127.0.0.1:$nghttpd_port/index.json" | summarise
printf 'nghttpd, POST echoed (same body):   '
h2load "${common[@]}" -d "$out/body.json" -H "apns-topic: $topic" "https://127.0.0.1:$nghttpd_port/index.json" | summarise

kill "${pids[0]}"
wait "${pids[0]}" || true
pids=("${pids[@]:1}")
echo "fake APNs: $(head -1 "$out/server.log")"
