#!/usr/bin/env bash
# Installs, with apt, exactly what building, running and testing hvwgd need.
# Idempotent: when everything is present it prints nothing and touches nothing.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake pkg-config
  libsystemd-dev libudev-dev libvirt-dev libext2fs-dev comerr-dev libblkid-dev
  zlib1g-dev libisal-dev libcurl4-openssl-dev libssl-dev libxml2-dev libjson-c-dev libisofs-dev
  # tests and fuzzing
  libcmocka-dev clang libclang-rt-14-dev python3 util-linux fdisk e2fsprogs scdoc man-db groff-base bsdextrautils
  dbus-daemon dbus-bin systemd libxml2-utils gzip pigz curl openssl iproute2 bc git
  genisoimage
  # packages: the .deb (tools/build-deb.sh), lintian, the RPM spec parsed by rpmspec
  debhelper dpkg-dev lintian rpm
  # the systemd boot test's Debian 12 guest (tests/boot/systemd)
  debootstrap debian-archive-keyring
  # running machines (libvirt + qemu)
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system libvirt-clients
  qemu-system-x86 qemu-utils
  # batch jobs in VMs on a real Slurm (tests/integration/test_slurm.py)
  slurmctld slurmd slurm-client munge procps
  # an XFS partition the contents scan reports but does not read (tests/integration/test_contents.py)
  xfsprogs
  # fetching through a real HTTP caching proxy (tests/integration/test_squid.py)
  squid
  # bgzip: BGZF images for parallel decoding (tests/integration/test_parallel_gzip.py)
  tabix
  # the boot test's tiny guest (tests/boot/make-guest.sh)
  linux-image-cloud-amd64 busybox-static syslinux syslinux-common mtools dosfstools cpio
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
