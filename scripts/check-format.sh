#!/usr/bin/env bash
# The house format (.clang-format) holds for every C++ file git tracks under harness/, fuzzers/
# and bench/; generated tables (*.inc) are left as their generators write them. Prints the
# first differences and exits 1 when a file is not formatted; `clang-format-14 -i FILE` fixes it.
set -euo pipefail
cd "$(dirname "$0")/.."
format=${CLANG_FORMAT:-clang-format-14}
mapfile -t files < <(git ls-files 'harness/*.cpp' 'harness/*.hpp' 'fuzzers/*.cpp' 'bench/*.cpp' 'bench/*.hpp')
"$format" --dry-run -Werror "${files[@]}"
echo "check-format: ${#files[@]} files as .clang-format says"
