#!/usr/bin/env bash
# Builds a tiny bootable image in the HEPiX format for the boot test: a raw disk with an MBR
# (syslinux's mbr.bin), one bootable FAT partition with SYSLINUX, Debian's cloud kernel and a
# busybox-static initramfs whose /init reports on the serial console what the guest sees (CPUs,
# memory, the disk labelled "scratch", its size, a write and read on it; the context disk
# labelled "cidata", mounted read-only, its context.sh sourced and its prolog.sh run, as the
# HEPiX context service does) and powers off.
# No loop devices or mounts: mkfs.fat --offset, mtools and syslinux --offset work on the file.
# usage: make-guest.sh OUT.img
set -euo pipefail
out=$1
kver=$(ls /lib/modules | grep -- '-cloud-amd64$' | sort -V | tail -n 1)
[ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ] || { echo "make-guest: no linux-image-cloud-amd64 kernel installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

root="$work/root"
mkdir -p "$root"/{bin,proc,sys,dev,mnt,modules}
cp /bin/busybox "$root/bin/busybox"
: > "$root/modules/order"
# the context disk is an IDE CD-ROM: ata_piix, sr_mod (and cdrom), isofs — all modules in
# Debian's cloud kernel, loaded before anything looks for it
for m in virtio_pci virtio_blk ata_piix sr_mod isofs; do
  modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$root/modules/"
  basename "$ko" >> "$root/modules/order"
done
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m; done
sleep 1
echo "HVWG-GUEST: booted"
echo "HVWG-CPUS: $(grep -c ^processor /proc/cpuinfo)"
echo "HVWG-MEM-KB: $(awk '/MemTotal/ {print $2}' /proc/meminfo)"
dev=""
for i in 1 2 3 4 5 6 7 8 9 10; do
  dev=$(findfs LABEL=scratch 2>/dev/null) && break
  sleep 1
done
echo "HVWG-SCRATCH-DEV: ${dev:-none}"
if [ -n "$dev" ]; then
  echo "HVWG-SCRATCH-BYTES: $(blockdev --getsize64 "$dev")"
  if mount -t ext4 "$dev" /mnt && echo "hello from the guest" > /mnt/probe && sync &&
     [ "$(cat /mnt/probe)" = "hello from the guest" ] && umount /mnt; then
    echo "HVWG-SCRATCH-RW: ok"
  else
    echo "HVWG-SCRATCH-RW: failed"
  fi
fi
ctx=""
for i in 1 2 3 4 5; do
  ctx=$(findfs LABEL=cidata 2>/dev/null) && break
  [ -b /dev/sr0 ] && ctx=/dev/sr0 && break
  sleep 1
done
echo "HVWG-CONTEXT-DEV: ${ctx:-none}"
if [ -n "$ctx" ] && mkdir -p /ctx && mount -t iso9660 -o ro "$ctx" /ctx; then
  echo "HVWG-CONTEXT-MOUNT: $(awk '$2 == "/ctx" {print $4}' /proc/mounts | cut -d, -f1)"
  echo "HVWG-CONTEXT-FILES: $(ls /ctx | tr '\n' ' ')"
  [ -f /ctx/context.sh ] && { set -a; . /ctx/context.sh; set +a; }
  [ -f /ctx/prolog.sh ] && (cd /ctx && sh ./prolog.sh)
  umount /ctx
fi
echo "HVWG-GUEST: powering off"
sync
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$work/initrd.gz"

cat > "$work/syslinux.cfg" <<'CFG'
SERIAL 0 115200
DEFAULT guest
PROMPT 0
TIMEOUT 0
LABEL guest
  LINUX vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 panic=-1 loglevel=4
CFG

rm -f "$out.tmp"
truncate -s 96M "$out.tmp"
printf 'label: dos\nstart=2048, type=e, bootable\n' | sfdisk -q --no-reread --no-tell-kernel "$out.tmp"
off=$((2048 * 512))
mkfs.fat -F 16 -n GUEST --offset 2048 "$out.tmp" $(( (96 * 1024 * 1024 - off) / 1024 )) >/dev/null
export MTOOLS_SKIP_CHECK=1
mcopy -i "$out.tmp@@$off" "/boot/vmlinuz-$kver" ::vmlinuz
mcopy -i "$out.tmp@@$off" "$work/initrd.gz" ::initrd.gz
mcopy -i "$out.tmp@@$off" "$work/syslinux.cfg" ::syslinux.cfg
syslinux --offset "$off" --install "$out.tmp"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$out.tmp" bs=440 count=1 conv=notrunc status=none
mv "$out.tmp" "$out"
