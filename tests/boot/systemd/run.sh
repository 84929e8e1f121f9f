#!/usr/bin/env bash
# The systemd boot test: a Debian 12 guest (debootstrap, cached by base.sh) with the project's
# .deb installed boots under QEMU (TCG) with systemd as PID 1; guest-check.sh runs inside as a
# unit after multi-user.target and reports on the serial console; this script prints what it
# checked and fails on any FAIL or on a missing report. The images to fetch reach the guest on
# two more virtio disks (the second throttled by QEMU, so that a fetch is still running when
# `systemctl stop` comes). usage: run.sh HVWGD.deb   (about 2 minutes with a cached base)
set -euo pipefail
deb=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
for c in debootstrap qemu-system-x86_64 mkfs.ext4 sfdisk dpkg-deb; do
  command -v "$c" >/dev/null || { echo "SKIP: $c not installed (tools/deps.sh installs it)"; exit 0; }
done
work=$(mktemp -d /var/tmp/hvwg-sdboot.XXXXXX)
trap 'rm -rf "$work"' EXIT

# the base image carries the libraries the package depends on, so the package installs offline
libs=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep -v '^$')
base=$(bash "$here/base.sh" $libs) || { echo "FAIL: cannot make the Debian 12 root for the guest (above: why)"; exit 1; }
root="$work/root"
mkdir "$root"
tar --numeric-owner -C "$root" -xf "$base"
cp "$deb" "$root/tmp/hvwgd.deb"
if ! chroot "$root" dpkg -i /tmp/hvwgd.deb >"$work/dpkg.log" 2>&1; then
  cat "$work/dpkg.log"; echo "FAIL: the package does not install into a fresh Debian 12 root"; exit 1
fi
rm "$root/tmp/hvwgd.deb"
echo "ok   the package installs into a fresh Debian 12 root (dpkg -i, offline)"
for f in /usr/sbin/hvwgd /usr/bin/hvwgctl /lib/systemd/system/hvwgd.service /usr/share/dbus-1/system.d/org.hepix.hvwg1.conf \
         /usr/share/dbus-1/system-services/org.hepix.hvwg1.service /usr/lib/sysusers.d/hvwgd.conf /etc/hvwgd/hvwgd.conf \
         /etc/systemd/system/multi-user.target.wants/hvwgd.service; do
  [ -e "$root$f" ] || [ -L "$root$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
echo "ok   unit, bus policy, activation file, sysusers entry, configuration in place; unit enabled"

# the guest's own set-up: fstab, the test unit, hvwgd's drop-in for the test sources
cat > "$root/etc/fstab" <<'FSTAB'
/dev/vda  /               ext4  rw,errors=remount-ro  0 1
LABEL=hvwgsrc   /srv/hvwg-src   ext4  ro  0 0
LABEL=hvwgslow  /srv/hvwg-slow  ext4  ro  0 0
FSTAB
mkdir -p "$root/srv/hvwg-src" "$root/srv/hvwg-slow" "$root/etc/hvwgd/hvwgd.conf.d"
echo hvwg-guest > "$root/etc/hostname"
cat > "$root/etc/hvwgd/hvwgd.conf.d/10-boottest.conf" <<'CONF'
[Storage]
AllowedSourceDirs=/srv/hvwg-src /srv/hvwg-slow
[Machine]
LibvirtURI=test:///default
Hypervisor=qemu
ScratchPerCoreGiB=1
MemoryPerCoreMiB=256
# the guest has 1 GiB of RAM, less than the default reserve for the host
ReservedMemoryMiB=256
CONF
install -m 0755 "$here/guest-check.sh" "$root/usr/local/sbin/hvwg-boottest"
cat > "$root/etc/systemd/system/hvwg-boottest.service" <<'UNIT'
[Unit]
Description=hvwgd boot test
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/hvwg-boottest
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TimeoutStartSec=240
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/hvwg-boottest.service "$root/etc/systemd/system/multi-user.target.wants/"
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"   # keep the console for the report

# the sources: a small MBR image (64 MiB, one Linux partition), an 8 MiB one for the reload
# check, and 16 MiB of incompressible data on the throttled disk (~64 s at 256 KiB/s)
src="$work/src"; slow="$work/slow"
mkdir "$src" "$slow"
mkimg() {  # mkimg FILE MIB RANDOM
  truncate -s "$2M" "$1"
  [ "$3" = yes ] && head -c "$(( ($2 - 1) << 20 ))" /dev/urandom | dd of="$1" bs=1M seek=1 conv=notrunc status=none
  printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q --no-reread --no-tell-kernel "$1"
}
mkimg "$work/small.img" 64 no; gzip -c "$work/small.img" > "$src/small.img.gz"
sha512sum "$src/small.img.gz" | cut -d' ' -f1 > "$src/small.gz.sha512"
mkimg "$work/big8.img" 8 yes; gzip -1 -c "$work/big8.img" > "$src/big8.img.gz"
mkimg "$work/slow.img" 16 yes; gzip -1 -c "$work/slow.img" > "$slow/slow.img.gz"
mkfs.ext4 -q -F -L hvwgsrc -d "$src" "$work/src.ext4" 64M
mkfs.ext4 -q -F -L hvwgslow -d "$slow" "$work/slow.ext4" 64M
mkfs.ext4 -q -F -L root -d "$root" "$work/root.ext4" 2G

# the contents scan on a real Debian 12 root: the same filesystem in an MBR image, read by the
# package's own hvwgd --lint (no daemon, no mount)
truncate -s 2049M "$work/lint.img"
echo 'start=2048, type=83' | sfdisk -q --no-reread --no-tell-kernel "$work/lint.img" >/dev/null
dd if="$work/root.ext4" of="$work/lint.img" bs=1M seek=1 conv=sparse,notrunc status=none
lint=$("$root/usr/sbin/hvwgd" --lint "$work/lint.img" || true)
rm -f "$work/lint.img"
if grep -q 'note    os .*Debian GNU/Linux 12 (bookworm) (ID=debian, VERSION_ID=12)' <<<"$lint" &&
   grep -q 'note    kernel .*cloud-amd64 with initramfs' <<<"$lint"; then
  echo "ok   hvwgd --lint reads the real Debian 12 root: $(grep -c . <<<"$lint") lines, OS and kernel found"
else
  echo "$lint"; echo "FAIL: hvwgd --lint does not report the Debian 12 root's OS and kernel"; exit 1
fi
kernel=$(ls "$root"/boot/vmlinuz-* | head -1); initrd=$(ls "$root"/boot/initrd.img-* | head -1)
cp "$kernel" "$work/vmlinuz"; cp "$initrd" "$work/initrd"
rm -rf "$root"

echo "booting the guest (QEMU TCG, systemd as PID 1)…"
t0=$(date +%s)
timeout 300 qemu-system-x86_64 -machine pc,accel=tcg -cpu max -smp 2 -m 1024 -nodefaults -display none -no-reboot \
  -kernel "$work/vmlinuz" -initrd "$work/initrd" \
  -append "root=/dev/vda rw console=ttyS0,115200 panic=-1 quiet systemd.show_status=error" \
  -drive file="$work/root.ext4",if=virtio,format=raw \
  -drive file="$work/src.ext4",if=virtio,format=raw,readonly=on \
  -drive file="$work/slow.ext4",if=virtio,format=raw,readonly=on,throttling.bps-total=262144 \
  -serial file:"$work/serial.log" -nic none || true
t1=$(date +%s)
grep -a "^HVWG-" "$work/serial.log" | tr -d '\r' || true
if ! grep -aq "^HVWG-CHECK done" "$work/serial.log"; then
  echo "--- last lines of the serial console"; tail -n 40 "$work/serial.log" | tr -d '\r'
  echo "FAIL: the guest did not finish its checks ($((t1 - t0)) s)"; exit 1
fi
echo "guest ran for $((t1 - t0)) s"
if grep -aq "^HVWG-CHECK FAIL" "$work/serial.log" || ! grep -aq "^HVWG-CHECK done [0-9]* passed 0 failed" "$work/serial.log"; then
  echo "FAIL: see the checks above"; exit 1
fi
echo "systemd boot test passed"
