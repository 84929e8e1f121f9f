#!/usr/bin/env bash
# run-unit.sh TEST-BINARY: runs the image list unit test with a fresh throwaway CA (make-ca.sh).
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$(dirname "$0")/make-ca.sh" "$tmp"
HVWG_IL_FIXTURE=$tmp "$1"
