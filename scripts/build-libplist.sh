#!/usr/bin/env bash
# Builds libplist (the C library only: no C++ wrapper, no Python, no tools) from Debian's
# source package, instrumented for fuzzing, into PREFIX: PREFIX/lib/libplist-2.0.a and
# PREFIX/include/plist/plist.h. Debian's libplist is not instrumented, so libFuzzer sees no
# edge inside it and ASan no overflow; the fuzz builds link this one instead
# (-DMDMC_INSTRUMENTED_LIBPLIST=PREFIX).
#
#   scripts/build-libplist.sh PREFIX
#
# Environment:
#   CC, CXX, CFLAGS  the compiler and flags (default clang-14, clang++-14 and the fuzz preset's
#                    instrumentation); configure insists on a working C++ compiler.
#   MDMC_LIBPLIST_DSC  a Debian .dsc already fetched and checked beside its tarballs (the
#                    ClusterFuzzLite image, which is Ubuntu); otherwise the source of the
#                    installed libplist-dev is fetched with apt-get source.
#   MDMC_DOWNLOADS   where fetched sources are kept (default build/downloads).
#
# Idempotent: nothing is rebuilt when PREFIX already holds a build of the same source with the
# same compiler, flags and script.
set -euo pipefail

if (( $# != 1 )); then
  echo "usage: $0 PREFIX" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
CC=${CC:-clang-14}
CXX=${CXX:-clang++-14}
CFLAGS=${CFLAGS:--O2 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer}
downloads=${MDMC_DOWNLOADS:-$repo/build/downloads}
start=$(date +%s)

# Debian's deb-src entries are off by default; apt-get source needs them.
ensure_deb_src() {
  if apt-cache showsrc libplist 2>/dev/null | grep -q '^Package: libplist$'; then
    return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "build-libplist: no deb-src entry for libplist; add one (as root) or set MDMC_LIBPLIST_DSC" >&2
    exit 1
  fi
  local codename
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
  echo "build-libplist: adding Debian source entries for $codename"
  cat >/etc/apt/sources.list.d/mdmconform-deb-src.sources <<EOF
# Added by mdmconform's scripts/build-libplist.sh: apt-get source needs deb-src entries.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -q >/dev/null
}

# The .dsc of the source to build. apt-get source checks the .dsc and the tarballs against
# the hashes in the archive's signed Sources index before it keeps them.
if [[ -n "${MDMC_LIBPLIST_DSC:-}" ]]; then
  dsc=$(cd "$(dirname "$MDMC_LIBPLIST_DSC")" && pwd)/$(basename "$MDMC_LIBPLIST_DSC")
else
  version=$(dpkg-query -W -f='${source:Version}' libplist-dev)
  version=${version#*:}  # no epoch in file names
  dsc="$downloads/libplist_$version.dsc"
  if [[ ! -f "$dsc" ]]; then
    ensure_deb_src
    mkdir -p "$downloads"
    # A partial download must not look like a complete one: fetch into a scratch folder.
    fetch=$(mktemp -d "$downloads/fetch.XXXXXX")
    (cd "$fetch" && apt-get source -q --download-only "libplist=$version" >/dev/null 2>&1) || {
      rm -rf "$fetch"
      echo "build-libplist: apt-get source libplist=$version failed" >&2
      exit 1
    }
    chmod 644 "$fetch"/*
    mv "$fetch"/* "$downloads/"
    rmdir "$fetch"
  fi
fi

# What the build depends on; a change to any of it rebuilds.
cc_version=$("$CC" --version | head -n 1)
key=$( { sha256sum <"$dsc"; echo "$cc_version"; echo "$CFLAGS"; sha256sum <"$0"; } | sha256sum | cut -d' ' -f1)
if [[ -f "$prefix/lib/libplist-2.0.a" && -f "$prefix/.build-key" && "$(cat "$prefix/.build-key")" == "$key" ]]; then
  echo "build-libplist: $prefix is up to date ($(basename "$dsc"))"
  exit 0
fi

work="$prefix.build"
rm -rf "$work" "$prefix/.build-key"
mkdir -p "$work"
# dpkg-source checks the tarballs against the checksums in the .dsc, then applies Debian's
# patches. It cannot check the .dsc's own signature without debian-keyring; the archive's
# signed index already vouched for the .dsc.
dpkg-source -x "$dsc" "$work/src" >"$work/dpkg-source.log" 2>&1 || { cat "$work/dpkg-source.log" >&2; exit 1; }

launcher=()
command -v ccache >/dev/null && launcher=(ccache)
cd "$work/src"
NOCONFIGURE=1 ./autogen.sh >"$work/autogen.log" 2>&1 || { tail -n 20 "$work/autogen.log" >&2; exit 1; }
./configure --prefix="$prefix" --disable-shared --enable-static --without-cython \
    CC="${launcher[*]} $CC" CXX="${launcher[*]} $CXX" CFLAGS="$CFLAGS" \
    >"$work/configure.log" 2>&1 || { tail -n 20 "$work/configure.log" >&2; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
# libcnary is libplist's node library, folded into libplist-2.0.a; the C++ wrapper and the
# tools are not built.
if ! { make -j "$jobs" -C libcnary && make -j "$jobs" -C src libplist-2.0.la; } >"$work/make.log" 2>&1; then
  tail -n 20 "$work/make.log" >&2
  exit 1
fi

mkdir -p "$prefix/lib" "$prefix/include/plist"
cp src/.libs/libplist-2.0.a "$prefix/lib/"
cp include/plist/plist.h "$prefix/include/plist/"
echo "$key" >"$prefix/.build-key"
echo "build-libplist: built $(basename "$dsc") with $CC into $prefix in $(( $(date +%s) - start )) s"
