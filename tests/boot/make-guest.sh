#!/usr/bin/env bash
# Builds a tiny bootable image in the HEPiX format for the boot test: a raw disk with an MBR
# (syslinux's mbr.bin), one bootable FAT partition with SYSLINUX, Debian's cloud kernel and a
# busybox-static initramfs whose /init reports on the serial console what the guest sees (CPUs,
# memory, the disk labelled "scratch", its size, a write and read on it; the context disk
# labelled "cidata" read by contrib/context/hvwg-context, the image-side context service, which
# runs its prolog.sh with context.sh's variables) and powers off.
# No loop devices or mounts: mkfs.fat --offset, mtools and syslinux --offset work on the file.
# usage: make-guest.sh OUT.img
set -euo pipefail
out=$1
kver=$(ls /lib/modules | grep -- '-cloud-amd64$' | sort -V | tail -n 1)
[ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ] || { echo "make-guest: no linux-image-cloud-amd64 kernel installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

root="$work/root"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$root"/{bin,proc,sys,dev,mnt,modules,run,tmp,usr/libexec}
cp /bin/busybox "$root/bin/busybox"
cp "$here/../../contrib/context/hvwg-context" "$root/usr/libexec/hvwg-context"
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
# the HEPiX context service of contrib/, as an image would run it (it finds LABEL=cidata itself)
HVWG_CONTEXT_WAIT=10 sh /usr/libexec/hvwg-context prolog 2>&1 | sed 's/^/HVWG-CTX-LOG: /'
echo "HVWG-CONTEXT-FILES: $(ls /run/hvwg-context 2>/dev/null | tr '\n' ' ')"
echo "HVWG-CONTEXT-MODE: $(stat -c %a /run/hvwg-context 2>/dev/null)"
echo "HVWG-CONTEXT-MOUNTS: $(grep -c iso9660 /proc/mounts)"
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
