#!/usr/bin/env bash
# Installs the Debian 12 packages mdmconform builds and tests with; only what is missing.
# Idempotent: a second run installs nothing and takes about a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libplist-dev libyaml-cpp-dev libboost1.81-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  clang-14 libclang-rt-14-dev
  autoconf automake libtool dpkg-dev
  jq python3 clang-format-14
  scep
  libnghttp2-dev nghttp2-client nghttp2-server
)
# `--test` (scripts/test.sh): also headless Chromium and chromedriver, for the browser test of
# report.html. Left out of the quick start, which does not need them.
if [[ "${1:-}" == "--test" ]]; then
  packages+=(chromium chromium-driver)
fi
# `--bench`: the load benchmarks' reference client, timer and profiler (bench/load_p2.sh).
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(wrk time linux-perf)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing ${missing[*]}; run as root (or with sudo)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
