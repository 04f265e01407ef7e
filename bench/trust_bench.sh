#!/usr/bin/env bash
# The whole suite against `mdmconform serve` (HTTPS, identity mode both) on loopback, twice a
# run: with the server's CA given as the profile's `tls.ca`, and without it, trusting the
# system's store, which holds the CA here through OpenSSL's SSL_CERT_FILE (a bundle of
# /etc/ssl/certs/ca-certificates.crt and the CA). The two should take the same time: the trust
# is loaded once per run, whatever it is. Run by hand, not by ctest: the numbers depend on the
# machine.
#
#   bench/trust_bench.sh [BINARY] [RUNS]     default: build/dev/mdmconform, 5 runs per setting
#   JOBS="1 2" bench/trust_bench.sh          other job counts (default 1)
#   BEFORE=OLD_BINARY bench/trust_bench.sh   also time OLD_BINARY, run for run beside BINARY
#
# Each run starts a new server (BINARY's, with a new CA) and runs the suite against it once
# with each binary and trust, in alternating order, with seed i; only the `run` is timed. Needs
# bash, awk and GNU time (/usr/bin/time: the CPU a run took, steadier than its wall time on a
# loaded machine). Also printed: how long the exchanges that opened a connection took (each
# exchange's elapsed_us in report.json), where loading the trust per connection showed.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-build/dev/mdmconform}
runs=${2:-5}
job_counts=${JOBS:-1}
system_bundle=/etc/ssl/certs/ca-certificates.crt
[[ -x "$bin" ]] || { echo "trust_bench: no binary at $bin (build it, or pass its path)" >&2; exit 2; }
[[ -r "$system_bundle" ]] || { echo "trust_bench: no system bundle at $system_bundle" >&2; exit 2; }
bin=$(realpath "$bin")
labels=(after)
declare -A binary=([after]="$bin")
if [[ -n "${BEFORE:-}" ]]; then
  [[ -x "$BEFORE" ]] || { echo "trust_bench: no binary at $BEFORE" >&2; exit 2; }
  labels=(before after)
  binary[before]=$(realpath "$BEFORE")
fi

out=$(mktemp -d)
server_pid=
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap 'stop_server; rm -rf "$out"' EXIT
walls_file="$out/walls.txt"  # lines: LABEL JOBS TRUST WALL_MS CPU_MS RUN
fresh_file="$out/fresh.txt"  # lines: LABEL JOBS TRUST US, each exchange that opened a connection
: >"$walls_file"
: >"$fresh_file"

# The two network users specs/targets/reference.yaml manages, so that the same cases pass.
users=(7D9F5A0E-0B52-4C39-9A49-2E1C6A3B8D10 3C2B1A09-8F7E-4D6C-9B5A-4E3D2C1B0A98)

elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Starts a server with a new CA in $1; sets server_pid and port.
start_server() {
  local dir=$1
  mkdir -p "$dir"
  "$bin" serve --port 0 --tls-dir "$dir/tls" --identity-mode both \
    --manage-network-user "${users[0]}" --manage-network-user "${users[1]}" >"$dir/serve.log" 2>&1 &
  server_pid=$!
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's|^reference MDM server on https://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$dir/serve.log")
    [[ -n "$port" ]] && return 0
    sleep 0.05
  done
  echo "trust_bench: the server did not start:" >&2
  cat "$dir/serve.log" >&2
  exit 1
}

# A target profile for the server on $port with CA files in $1/tls; $2 is its tls: block.
write_profile() {
  local dir=$1 tls=$2
  cat <<EOF
schema_version: 1
name: trust-bench
urls:
  check_in: https://127.0.0.1:$port/checkin
  server: https://127.0.0.1:$port/mdm
topic: com.apple.mgmt.External.mdmconform
$tls
identity:
  mode: both
  key_type: ec_p256
  issuer: {cert: $dir/tls/ca.crt, key: $dir/tls/ca.key}
limits:
  connect_timeout_ms: 2000
  write_timeout_ms: 5000
  header_timeout_ms: 5000
  body_timeout_ms: 10000
admin:
  enqueue:
    method: PUT
    url: https://127.0.0.1:$port/v1/enqueue/{channel}
    expect_status: [200]
policy:
  network_users:
    managed: [${users[0]}, ${users[1]}]
declares:
  per_user_connections: true
EOF
}

echo "trust_bench: $bin${BEFORE:+ (after) and $BEFORE (before)}, $runs run(s) per setting, $(nproc) CPU(s)"
for jobs in $job_counts; do
  for ((i = 1; i <= runs; i++)); do
    dir="$out/jobs$jobs-run$i"
    start_server "$dir"
    cat "$system_bundle" "$dir/tls/ca.crt" >"$dir/bundle.pem"
    write_profile "$dir" "tls: {ca: $dir/tls/ca.crt}" >"$dir/ca.yaml"
    write_profile "$dir" "" >"$dir/system.yaml"
    order="ca system"
    ((i % 2 == 0)) && order="system ca"
    line="jobs $jobs run $i:"
    for label in "${labels[@]}"; do
      for trust in $order; do
        start=$EPOCHREALTIME
        status=0
        SSL_CERT_FILE="$dir/bundle.pem" /usr/bin/time -f "%U %S" -o "$dir/$label-$trust.time" "${binary[$label]}" run --target "$dir/$trust.yaml" --seed "$i" \
          --jobs "$jobs" --out "$dir/$label-$trust" >"$dir/$label-$trust.log" 2>&1 || status=$?
        end=$EPOCHREALTIME
        if ((status != 0)); then
          echo "trust_bench: run $i ($label, $trust, --jobs $jobs) exited $status:" >&2
          tail -n 20 "$dir/$label-$trust.log" >&2
          exit 1
        fi
        wall=$(elapsed_ms "$start" "$end")
        cpu=$(awk 'END { printf "%.0f", ($1 + $2) * 1000 }' "$dir/$label-$trust.time")
        echo "$label $jobs $trust $wall $cpu $i" >>"$walls_file"
        # An exchange's "elapsed_us" comes just before its "reused_connection" in report.json.
        awk -v l="$label" -v j="$jobs" -v t="$trust" '
          /"elapsed_us": /                 { us = $2; gsub(/,/, "", us) }
          /"reused_connection": false/     { print l, j, t, us }
        ' "$dir/$label-$trust/report.json" >>"$fresh_file"
        line+=$(printf ' %s %s %5d ms (CPU %d);' "$label" "$trust" "$wall" "$cpu")
      done
    done
    stop_server
    echo "$line"
  done
done

echo
ratios=()
for label in "${labels[@]}"; do
  for jobs in $job_counts; do
    ca=$(awk -v l="$label" -v j="$jobs" '$1 == l && $2 == j && $3 == "ca" { print $4 }' "$walls_file" | median)
    system=$(awk -v l="$label" -v j="$jobs" '$1 == l && $2 == j && $3 == "system" { print $4 }' "$walls_file" | median)
    ratio=$(awk -v a="$ca" -v b="$system" 'BEGIN { printf "%.2f", b / a }')
    echo "$label, jobs $jobs: median wall: tls.ca $ca ms, system store $system ms (system / tls.ca = $ratio)"
    ca=$(awk -v l="$label" -v j="$jobs" '$1 == l && $2 == j && $3 == "ca" { print $5 }' "$walls_file" | median)
    system=$(awk -v l="$label" -v j="$jobs" '$1 == l && $2 == j && $3 == "system" { print $5 }' "$walls_file" | median)
    ratio=$(awk -v a="$ca" -v b="$system" 'BEGIN { printf "%.2f", b / a }')
    echo "  median CPU (user + sys) of the run: tls.ca $ca ms, system store $system ms (system / tls.ca = $ratio)"
    # The two runs of one server, back to back, saw the same load: their ratio is steadier.
    for column in 4 5; do
      ratios[column]=$(awk -v l="$label" -v j="$jobs" -v c="$column" '
        $1 == l && $2 == j { v[$6 "," $3] = $c; runs[$6] = 1 }
        END { for (r in runs) printf "%.3f\n", v[r ",system"] / v[r ",ca"] }
      ' "$walls_file" | median)
    done
    echo "  median of each run's system / tls.ca: wall ${ratios[4]}, CPU ${ratios[5]}"
    for trust in ca system; do
      n=$(awk -v l="$label" -v j="$jobs" -v t="$trust" '$1 == l && $2 == j && $3 == t' "$fresh_file" | wc -l)
      us=$(awk -v l="$label" -v j="$jobs" -v t="$trust" '$1 == l && $2 == j && $3 == t { print $4 }' "$fresh_file" | median)
      echo "  $trust: an exchange that opened its connection took $us us (median of $n)"
    done
  done
done
