#!/usr/bin/env bash
# Builds the Debian package from this tree (tracked and new files, no build directories) in a
# scratch copy: dpkg-buildpackage -b -us -uc. The .deb files (and the build log) land in OUTDIR.
# usage: tools/build-deb.sh OUTDIR   (prints the path of hvwgd_*.deb)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath "$1")
mkdir -p "$out"
work=$(mktemp -d /tmp/hvwg-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/hvwgd"
git ls-files -co --exclude-standard -z | tar --null -cf - -T - | tar -xf - -C "$work/hvwgd"
if ! (cd "$work/hvwgd" && dpkg-buildpackage -b -us -uc) >"$out/build.log" 2>&1; then
  tail -n 30 "$out/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed (log: $out/build.log)" >&2
  exit 1
fi
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out/"
ls "$out"/hvwgd_*_*.deb
