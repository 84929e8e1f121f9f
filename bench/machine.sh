#!/usr/bin/env bash
# Machine-creation benchmark (not a test): CreateMachine through the bus (4 GiB image, 4 cores,
# 4 × 20 GiB scratch, start=false, libvirt test:///default) against the same steps by hand —
# cp --reflink=auto --sparse=always, mke2fs -t ext4 (Debian default), virsh define — in one run.
# Uses the import benchmark's reference image (bench/import.sh builds it). usage: bench/machine.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
runs=3
[ "${1:-}" = "--runs" ] && runs=$2
data=${BENCH_DATA:-$top/bench/data}
[ -s "$data/ref.raw" ] || { echo "no reference image: run bench/import.sh first" >&2; exit 1; }
bash tools/deps.sh
dir=$(bash tools/build.sh normal)
hvwgd="$top/$dir/hvwgd"; hvwgctl="$top/$dir/hvwgctl"
. tools/lib.sh
hv_bench_work "$data" machine
work=$HV_WORK
mkdir -p "$work/manual"
cat >> "$work/hvwgd.conf" <<CONF
[Machine]
LibvirtURI=test:///default
Hypervisor=kvm
CpuOvercommit=4
CONF
hv_private_bus "$work" "$top/dbus/org.hepix.hvwg1.conf"
hv_start_daemon "$hvwgd" "$hvwgctl" "$work/hvwgd.conf" "$work/hvwgd.log"
"$hvwgctl" --bus-address="$HV_ADDR" --quiet fetch "file://$data/ref.raw" bench --raw
now() { date +%s.%N; }
best_h=99; best_m=99
echo "machine: $(nproc) cores, $(df -T "$work" | awk 'NR==2{print $2}'), image $(numfmt --to=iec "$(stat -c %s "$data/ref.raw")") ($(numfmt --to=iec $(( $(stat -c %b "$work/images/bench.raw") * 512 ))) allocated)"
for run in $(seq "$runs"); do
  sync; t0=$(now)
  "$hvwgctl" --bus-address="$HV_ADDR" --quiet create bench vm --cores=4 --no-start
  t=$(echo "$(now) - $t0" | bc); (( $(echo "$t < $best_h" | bc) )) && best_h=$t
  "$hvwgctl" --bus-address="$HV_ADDR" destroy vm
  rm -rf "$work/manual"/*; sync; t0=$(now)
  cp --reflink=auto --sparse=always "$work/images/bench.raw" "$work/manual/root.raw"
  truncate -s 80G "$work/manual/scratch.img"
  mke2fs -q -F -t ext4 -L scratch "$work/manual/scratch.img"
  cat > "$work/manual/dom.xml" <<XML
<domain type='kvm'><name>manual</name><memory unit='MiB'>8192</memory><vcpu>4</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$work/manual/root.raw'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$work/manual/scratch.img'/><target dev='vdb' bus='virtio'/></disk>
</devices></domain>
XML
  virsh -q -c test:///default define "$work/manual/dom.xml" >/dev/null
  sync
  t=$(echo "$(now) - $t0" | bc); (( $(echo "$t < $best_m" | bc) )) && best_m=$t
done
printf 'CreateMachine (bus, end to end, incl. fsync): %.3f s\n' "$best_h"
printf 'by hand (cp --sparse + mke2fs + virsh define + sync): %.3f s\n' "$best_m"
echo "ratio by-hand / hvwgd: $(echo "scale=2; $best_m / $best_h" | bc)x"
grep "root disk" "$work/hvwgd.log" | tail -1
