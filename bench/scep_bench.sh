#!/usr/bin/env bash
# One SCEP enrollment per device on loopback, timed by build/dev/bench/scep_bench: RSA 2048
# against Debian's scepserver (a new CA in a temporary depot, `-allowrenew 0`), and EC P-256
# against the fake SCEP server in the bench's own process, since scepserver answers an EC
# requester FAILURE badRequest (RFC 8894 encrypts the answer by key transport, which an EC key
# cannot receive; docs/scep.md). Run by hand, not by ctest: the numbers depend on the machine.
#
#   bench/scep_bench.sh [BENCH_BINARY] [RUNS]     default: build/dev/bench/scep_bench, 30 runs
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-build/dev/bench/scep_bench}
runs=${2:-30}
[[ -x "$bin" ]] || { echo "scep_bench: no binary at $bin (cmake --build build/dev --target scep_bench)" >&2; exit 2; }
[[ -x /usr/bin/scepserver ]] || { echo "scep_bench: /usr/bin/scepserver is absent (Debian package scep)" >&2; exit 2; }

dir=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

/usr/bin/scepserver ca -init -depot "$dir/depot" -keySize 2048 -years 1 -organization mdmconform-bench >/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/bin/scepserver -depot "$dir/depot" -port "$port" -challenge bench -allowrenew 0 >"$dir/server.log" 2>&1 &
server_pid=$!
url="http://127.0.0.1:$port/scep"
for _ in $(seq 100); do  # 10 s at most
  curl -fs --max-time 1 "$url?operation=GetCACaps" >/dev/null && break
  sleep 0.1
done
curl -fs --max-time 1 "$url?operation=GetCACaps" >/dev/null || { echo "scep_bench: scepserver did not answer" >&2; cat "$dir/server.log" >&2; exit 1; }

"$bin" --url "$url" --challenge bench --runs "$runs" --key-type RSA --key-size 2048
"$bin" --url "$url" --challenge bench --runs "$runs" --key-type RSA --key-size 1024
"$bin" --fake --runs "$runs" --key-type ECSECPrimeRandom --key-size 256
"$bin" --fake --runs "$runs" --key-type RSA --key-size 2048
