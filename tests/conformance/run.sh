#!/usr/bin/env bash
# Runs the D-Bus contract conformance check against a built hvwgd: run.sh HVWGD POLICY.
# The check lives in ../shared/conformance/ next to the contract; when this clone has no
# ../shared (a CI checkout of this repository alone), the copy taken from there is used.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared="$here/../../../shared/conformance/check-api.py"
if [ -f "$shared" ]; then
  check=$shared
else
  echo "note: ../shared not present; using the vendored copy tests/conformance/check-api.py"
  check="$here/check-api.py"
fi
exec python3 "$check" --hvwgd "$1" --policy "$2"
