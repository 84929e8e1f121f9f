#!/usr/bin/env bash
# The test command: installs what is missing, builds (normal and ASan+UBSan), runs ctest on both,
# then runs each fuzz target for a bounded time. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-12}

bash tools/deps.sh
echo "== every command the tests run comes from tools/deps.sh on a minbase Debian 12"
python3 tools/check-deps.py | grep -v '^ok '
getent group hvwg >/dev/null || groupadd -r hvwg   # the bus policy and the daemon know this group

echo "== build (normal)"
dir=$(bash tools/build.sh normal)
echo "== ctest (normal)"
# two at a time (the CI machine has 2 cores; the tests mostly wait): those that must run alone
# say so (RUN_SERIAL in tests/CMakeLists.txt)
(cd "$dir" && ctest -j2 --output-on-failure --timeout 900)
echo "   (${SECONDS} s so far)"

echo "== build (ASan+UBSan)"
dir=$(bash tools/build.sh asan)
echo "== ctest (ASan+UBSan, LeakSanitizer on; in the normal pass only, for the 20-minute budget: the"
echo "   real-guest tests (boot, run, Slurm: the daemon's code they take runs under the sanitizers in"
echo "   test_lifecycle, test_context and test_client on test:///default) and test_crash's SIGKILL loop"
echo "   (a sanitizer sees nothing of a process killed with SIGKILL))"
(cd "$dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest -j2 --output-on-failure --timeout 900 -E '^integration_test_(slurm|crash|boot|run)$')
echo "   (${SECONDS} s so far)"

echo "== build matrix (-Werror: gcc Release/Debug, clang Release, dpkg-buildflags)"
bash tools/build-matrix.sh

echo "== packages: the .deb (lintian), the RPM spec (rpmspec -P), the systemd boot test (Debian 12 guest, QEMU)"
pkgdir=$(mktemp -d /tmp/hvwg-pkg.XXXXXX)
trap 'rm -rf "$pkgdir"' EXIT
bash tools/build-deb.sh "$pkgdir" >/dev/null
bash tests/install/test_packages.sh "$pkgdir"
bash tests/boot/systemd/run.sh "$pkgdir"/hvwgd_*_*.deb
echo "   (${SECONDS} s so far)"

echo "== fuzz (${FUZZ_SECONDS}s per target, ASan+UBSan)"
dir=$(bash tools/build.sh fuzz)
bash tests/fuzz/run.sh "$dir" "$FUZZ_SECONDS"
echo "== all tests passed in ${SECONDS} s"
