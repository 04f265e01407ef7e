#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the conformance suite against the
# built-in reference server. The report lands in reports/<time>-reference/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh dev --target mdmconform
exec build/dev/mdmconform run "$@"
