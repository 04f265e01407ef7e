#!/usr/bin/env bash
# Configures and builds one preset (default: dev). Used by the README's two commands.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-dev}
shift || true
jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs" "$@"
