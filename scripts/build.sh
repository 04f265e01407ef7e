#!/usr/bin/env bash
# Configures and builds one preset (default: dev). Used by the README's two commands.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-dev}
shift || true
jobs=$(nproc 2>/dev/null || echo 2)
configure=()
if [[ "$preset" == fuzz ]]; then
  # The fuzz build links a libplist built with the fuzzing instrumentation (cached).
  scripts/build-libplist.sh build/fuzz/third_party/libplist
  configure=(-DMDMC_INSTRUMENTED_LIBPLIST="$PWD/build/fuzz/third_party/libplist")
fi
cmake --preset "$preset" "${configure[@]}" >/dev/null
cmake --build --preset "$preset" -j "$jobs" "$@"
