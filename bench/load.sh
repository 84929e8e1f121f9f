#!/usr/bin/env bash
# Load benchmark (not a test): 8 clients call ListImages/ListJobs/a property read as fast as they
# can for 30 s while two imports of the 4 GiB reference image run; p50/p99/max latency and
# errors (target: p99 <= 10 ms, zero errors). Needs bench/import.sh's reference image.
# usage: bench/load.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
secs=${1:-30}
data=${BENCH_DATA:-$top/bench/data}
[ -s "$data/ref.raw.gz" ] || { echo "no reference image: run bench/import.sh first" >&2; exit 1; }
bash tools/deps.sh
dir=$(bash tools/build.sh normal)
. tools/lib.sh
hv_bench_work "$data" load
work=$HV_WORK
hv_private_bus "$work" "$top/dbus/org.hepix.hvwg1.conf"
hv_start_daemon "$top/$dir/hvwgd" "$top/$dir/hvwgctl" "$work/hvwgd.conf" "$work/hvwgd.log"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
# keep two imports running for the whole measurement: restart each as it ends
(
  i=0
  end=$(( $(date +%s) + secs ))
  while [ "$(date +%s)" -lt "$end" ]; do
    i=$((i + 1))
    "$top/$dir/hvwgctl" --bus-address="$HV_ADDR" --quiet fetch "file://$data/ref.raw.gz" "a$i" &
    "$top/$dir/hvwgctl" --bus-address="$HV_ADDR" --quiet fetch "file://$data/ref.raw.gz" "b$i" &
    wait
    "$top/$dir/hvwgctl" --bus-address="$HV_ADDR" rm "a$i"; "$top/$dir/hvwgctl" --bus-address="$HV_ADDR" rm "b$i"
  done
) &
imports=$!
sleep 1
"$top/$dir/hvwg-load" --bus-address="$HV_ADDR" --clients=8 --seconds="$secs"
wait "$imports"
echo "imports completed during the run: $(grep -c '(fetch [ab][0-9]*) done' "$work/hvwgd.log"), failed: $(grep -c ') failed' "$work/hvwgd.log" || true)"
