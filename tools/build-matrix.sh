#!/usr/bin/env bash
# Builds the whole tree (daemon, client, tests) with -Werror in the configurations packagers and
# developers use: gcc Release and Debug, clang Release, and Debian's dpkg-buildflags. A warning
# in any of them fails. (RelWithDebInfo with gcc is the normal build of tools/test.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
root=$(mktemp -d /tmp/hvwg-matrix.XXXXXX)
trap 'rm -rf "$root"' EXIT
build() {
  local name=$1; shift
  if ! cmake -S . -B "$root/$name" -DHVWG_WERROR=ON "$@" >"$root/$name.log" 2>&1 ||
     ! cmake --build "$root/$name" -j"$jobs" >>"$root/$name.log" 2>&1; then
    grep -E "error|warning" "$root/$name.log" | head -20 >&2
    echo "build-matrix: $name FAILED" >&2
    return 1
  fi
  echo "build-matrix: $name ok"
}
build gcc-release -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc
build gcc-debug -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=gcc
build clang-release -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
  build dpkg-buildflags -DCMAKE_BUILD_TYPE=None
