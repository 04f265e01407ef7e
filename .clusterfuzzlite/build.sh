#!/bin/bash -eu
# ClusterFuzzLite (and OSS-Fuzz) build: every fuzzer of mdmconform, built with the engine's
# environment ($CC $CXX $CFLAGS $CXXFLAGS $LIB_FUZZING_ENGINE), copied to $OUT with its
# dictionary, options and seed corpus (<fuzzer>_seed_corpus.zip). Intermediate files go to
# $WORK. scripts/check-clusterfuzzlite.sh runs it outside Docker with the local clang.
set -euo pipefail
: "${CC:?}" "${CXX:?}" "${CFLAGS?}" "${CXXFLAGS?}" "${LIB_FUZZING_ENGINE:?}" "${SRC:?}" "${OUT:?}" "${WORK:?}"

# The repository: around this script, or where the Dockerfile copied it (the builder runs a
# copy of this script from $SRC).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f "$here/../CMakeLists.txt" ]]; then
  repo=$(cd "$here/.." && pwd)
else
  repo="$SRC/mdmconform"
fi

# The distribution's C++ libraries the project links (yaml-cpp, fmt) are built against
# libstdc++; OSS-Fuzz's -stdlib=libc++ cannot link with them.
CXXFLAGS=${CXXFLAGS//-stdlib=libc++/}

# libplist with the same compiler and flags, so that the engine sees the edges inside it and
# the sanitizer its memory errors; linked statically.
CC="$CC" CXX="$CXX" CFLAGS="$CFLAGS" "$repo/scripts/build-libplist.sh" "$WORK/libplist"

build="$WORK/build"
mkdir -p "$build/.cmake/api/v1/query" "$OUT/lib"
touch "$build/.cmake/api/v1/query/codemodel-v2"
# No build type: the flags are the engine's alone. The runner image has none of the builder's
# packages, so the shared libraries a fuzzer needs travel in $OUT/lib, found through an RPATH
# (not RUNPATH, which would not serve the libraries' own dependencies).
cmake -S "$repo" -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE= \
  -DCMAKE_CXX_COMPILER="$CXX" \
  -DCMAKE_CXX_FLAGS="$CXXFLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS="${LDFLAGS:-} -Wl,--disable-new-dtags" \
  -DCMAKE_BUILD_RPATH='$ORIGIN/lib' `# literal: the loader expands it` \
  -DMDMC_FUZZ=ON -DMDMC_BUILD_TESTS=OFF \
  -DMDMC_LIB_FUZZING_ENGINE="$LIB_FUZZING_ENGINE" \
  -DMDMC_INSTRUMENTED_LIBPLIST="$WORK/libplist" >"$WORK/configure.log" ||
  { tail -n 40 "$WORK/configure.log" >&2; exit 1; }

# Every executable target named *_fuzzer. One that fuzzes a live MDM server (it reads
# MDMC_FUZZ_TARGET) cannot run here: the runners have no network, not even loopback.
cmake -DBUILD_DIR="$build" -DOUTPUT="$WORK/fuzzers.tsv" -P "$repo/.clusterfuzzlite/list_fuzzers.cmake"
names=()
declare -A artifact_of source_dir_of
while IFS=$'\t' read -r name artifact source_dir kind; do
  if [[ "$kind" == live ]]; then
    echo "build.sh: skipping $name: it fuzzes a live server"
    continue
  fi
  names+=("$name")
  artifact_of[$name]=$artifact
  source_dir_of[$name]=$source_dir
done <"$WORK/fuzzers.tsv"
if (( ${#names[@]} == 0 )); then
  echo "build.sh: no *_fuzzer target found" >&2
  exit 1
fi
echo "build.sh: building ${names[*]}"
cmake --build "$build" -j "$(nproc)" --target "${names[@]}"

for name in "${names[@]}"; do
  cp "${artifact_of[$name]}" "$OUT/$name"
  for extension in dict options; do
    if [[ -f "${source_dir_of[$name]}/$name.$extension" ]]; then
      cp "${source_dir_of[$name]}/$name.$extension" "$OUT/$name.$extension"
    fi
  done
  corpus="$repo/corpus/$name"
  if [[ -d "$corpus" ]]; then
    rm -f "$OUT/${name}_seed_corpus.zip"
    (cd "$corpus" && find . -maxdepth 1 -type f -printf '%f\n' | sort >"$WORK/$name.seeds" &&
      cmake -E tar cf "$OUT/${name}_seed_corpus.zip" --format=zip --files-from="$WORK/$name.seeds")
  fi
  # Every shared library beyond glibc's own.
  ldd "$OUT/$name" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | while read -r lib; do
    case "$lib" in
      "$OUT"/lib/*) continue ;;  # copied for an earlier fuzzer
    esac
    case "$(basename "$lib")" in
      libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libresolv.so.*|ld-linux*) ;;
      *) cp -L "$lib" "$OUT/lib/" ;;
    esac
  done
done
echo "build.sh: ${#names[@]} fuzzers in $OUT"
