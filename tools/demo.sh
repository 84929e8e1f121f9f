#!/usr/bin/env bash
# The main job end to end, on this machine, as root: install, build, start a private bus and
# hvwgd, make a real gzip image, fetch it, inspect it, create and destroy a machine, then run a
# batch job's command in a real VM with hvwg-run (a private libvirtd + QEMU, the tests' tiny
# guest). Every step prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root (it starts a bus policy that only root may own, and uses loop-free temp stores)" >&2
  exit 1
fi
bash tools/deps.sh
getent group hvwg >/dev/null || groupadd -r hvwg
echo "== build"
dir=$(bash tools/build.sh normal)
hvwgd="$top/$dir/hvwgd"; hvwgctl="$top/$dir/hvwgctl"; hvwgrun="$top/$dir/hvwg-run"

. tools/lib.sh
work=$(mktemp -d /var/tmp/hvwgd-demo.XXXXXX)
chmod 755 "$work"
lv_pid=""
cleanup() {
  hv_stop_all
  [ -n "$lv_pid" ] && kill "$lv_pid" 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT

echo "== private bus with the project's policy (dbus/org.hepix.hvwg1.conf)"
hv_private_bus "$work" "$top/dbus/org.hepix.hvwg1.conf"
addr=$HV_ADDR

echo "== libvirt"
uri="test:///default"
if command -v virsh >/dev/null && virsh -c qemu:///system version >/dev/null 2>&1; then
  uri="qemu:///system"
  echo "qemu:///system is reachable: machines would be created there"
else
  echo "qemu:///system is not reachable here (no libvirtd running): using the embedded test:///default driver"
fi

mkdir -p "$work/src" "$work/images" "$work/machines"
cat > "$work/hvwgd.conf" <<CONF
[Storage]
ImageRoot=$work/images
MachineRoot=$work/machines
AllowedSourceDirs=$work/src
[Machine]
LibvirtURI=$uri
Hypervisor=qemu
CONF
echo "== hvwgd on the private bus"
hv_start_daemon "$hvwgd" "$hvwgctl" "$work/hvwgd.conf" "$work/hvwgd.log"
"$hvwgctl" --bus-address="$addr" status

echo "== a real image: 1 GiB raw disk, MBR (sfdisk), ext4 filled from /usr/share, swap; gzip -6"
img="$work/src/demo.img"
truncate -s 1G "$img"
printf 'label: dos\nstart=2048, size=900M, type=83, bootable\ntype=82\n' | sfdisk -q --no-reread --no-tell-kernel "$img"
mke2fs -q -F -t ext4 -L root -d /usr/share/doc -E offset=$((2048 * 512)) "$img" 900M
swap="$work/swap.tmp"; truncate -s 1M "$swap"; mkswap -q "$swap" >/dev/null
dd if="$swap" of="$img" bs=512 seek=$((2048 + 900 * 2048)) conv=notrunc status=none
gzip -6 -c "$img" > "$img.gz"
sha=$(sha512sum "$img.gz" | cut -d' ' -f1)
ls -l "$img.gz"

echo "== fetch (file://, sha512 and size verified, stream-decompressed, sparse)"
"$hvwgctl" --bus-address="$addr" fetch "file://$img.gz" demo --sha512="$sha" --size="$(stat -c %s "$img.gz")"
"$hvwgctl" --bus-address="$addr" images
cmp "$img" "$work/images/demo.raw" && echo "demo.raw is byte-identical to the source image"
echo "allocated on disk: source $(du -h "$img" | cut -f1), imported $(du -h "$work/images/demo.raw" | cut -f1)"

echo "== inspect"
"$hvwgctl" --bus-address="$addr" inspect demo
echo "== look inside without mounting: the image producers' check (libext2fs, read-only)"
"$hvwgctl" --bus-address="$addr" inspect --lint demo || echo "(exit $?: this demo disk holds data, not an OS; see the README's \"Making an image\")"

echo "== a bad image is refused (LVM partition)"
lvm="$work/src/lvm.img"
truncate -s 32M "$lvm"
printf 'label: dos\nstart=2048, size=8M, type=83\nsize=8M, type=8e\n' | sfdisk -q --no-reread --no-tell-kernel "$lvm"
gzip -c "$lvm" > "$lvm.gz"
"$hvwgctl" --bus-address="$addr" fetch "file://$lvm.gz" || echo "(refused as expected, exit $?)"

echo "== create a machine on $uri (2 cores, 1 GiB scratch per core)"
"$hvwgctl" --bus-address="$addr" create demo vm1 --cores=2 --scratch=2G --memory=512M --hypervisor=qemu
"$hvwgctl" --bus-address="$addr" machines
ls -ls "$work/machines/vm1"
dumpe2fs -h "$work/machines/vm1/scratch.img" 2>/dev/null | grep -E "volume name|UUID|features"
echo "== destroy it"
"$hvwgctl" --bus-address="$addr" destroy vm1
"$hvwgctl" --bus-address="$addr" machines
echo "== a batch job's command in a VM: hvwg-run (a private libvirtd, QEMU TCG, the tests' tiny guest)"
if command -v libvirtd >/dev/null && command -v qemu-system-x86_64 >/dev/null; then
  read -r lv_uri lv_pid < <(HVWG_SRC="$top" PYTHONDONTWRITEBYTECODE=1 python3 -c "
import sys; sys.path.insert(0, '$top/tests/integration')
import harness as h
p, uri, ok = h.start_libvirtd('$work')
print(uri if ok else 'none', p.pid)")
  if [ "$lv_uri" != none ]; then
    guest=$(HVWG_SRC="$top" HVWG_BUILD="$top/$dir" PYTHONDONTWRITEBYTECODE=1 python3 -c "
import sys; sys.path.insert(0, '$top/tests/integration')
import harness as h
print(h.guest_image())")
    kill "$HV_DAEMON_PID"; wait "$HV_DAEMON_PID" 2>/dev/null || true
    sed -i "s|^LibvirtURI=.*|LibvirtURI=$lv_uri|" "$work/hvwgd.conf"
    printf 'ScratchPerCoreGiB=1\nMemoryPerCoreMiB=128\n' >> "$work/hvwgd.conf"
    hv_start_daemon "$hvwgd" "$hvwgctl" "$work/hvwgd.conf" "$work/hvwgd.log"
    cp "$guest" "$work/src/guest.img"
    "$hvwgctl" --bus-address="$addr" --quiet fetch "file://$work/src/guest.img" guest --raw
    echo '$ hvwg-run --image=guest --cores=2 --verbose -- sh -c '"'"'echo "hello from a VM with $(nproc) CPUs, in $(pwd)"; exit 7'"'"
    set +e
    SLURM_JOB_ID=4711 "$hvwgrun" --bus-address="$addr" --image=guest --cores=2 --verbose -- \
      sh -c 'echo "hello from a VM with $(nproc) CPUs, in $(pwd)"; exit 7'
    echo "hvwg-run exited with $? (the command's status)"
    set -e
    "$hvwgctl" --bus-address="$addr" machines
    echo "kept console logs: $(ls "$work/machines/.logs" 2>/dev/null | tr '\n' ' ')"
  else
    echo "libvirtd did not start here: skipped"
  fi
else
  echo "no libvirtd/QEMU here: skipped (tools/deps.sh installs them)"
fi
echo "== done; hvwgd log:"
cat "$work/hvwgd.log"
