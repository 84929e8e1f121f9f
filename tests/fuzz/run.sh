#!/usr/bin/env bash
# Runs every fuzz target for a bounded time from the checked-in corpus: run.sh BUILD_DIR SECONDS.
# A crash fails the run; its input is left in BUILD_DIR/fuzz-artifacts/ to become a regression
# file in tests/fuzz/corpus/ and a unit test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
secs=${2:-40}
# findings of an earlier run are not this run's: start with none
rm -rf "$build/fuzz-artifacts"
mkdir -p "$build/fuzz-artifacts"
for t in mbr gzip dspec conf uri opts context imagelist contents; do
  work="$build/fuzz-work/$t"
  mkdir -p "$work"
  echo "fuzz_$t: ${secs}s"
  ASAN_OPTIONS=detect_leaks=1 "$build/tests/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" "$work" "$here/corpus/$t" 2>&1 |
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==.*ERROR|SUMMARY|artifact)" || true
  if ls "$build/fuzz-artifacts/$t-"* >/dev/null 2>&1; then
    echo "fuzz_$t: FOUND A CRASH: $(ls "$build/fuzz-artifacts/$t-"*)" >&2
    exit 1
  fi
done
echo "fuzzing: no findings"
