#!/usr/bin/env bash
# Configures and builds one variant: tools/build.sh [normal|asan|fuzz]. Prints the build dir.
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-normal}
jobs=$(nproc)
case "$variant" in
  normal) dir=build;      args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)   dir=build-asan; args=(-DCMAKE_BUILD_TYPE=Debug -DHVWG_SANITIZE=ON) ;;
  fuzz)   dir=build-fuzz; args=(-DCMAKE_BUILD_TYPE=Debug -DHVWG_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
  *) echo "usage: $0 [normal|asan|fuzz]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -DHVWG_WERROR=ON "${args[@]}" >/dev/null
cmake --build "$dir" -j"$jobs" >/dev/null
echo "$dir"
