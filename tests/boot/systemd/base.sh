#!/usr/bin/env bash
# Prints the path of a Debian 12 root filesystem tarball for the systemd boot test, building it
# with debootstrap (minbase + systemd as PID 1, dbus, udev, Debian's cloud kernel with its
# initramfs, and the libraries hvwgd links) when the cache has none for this script's version.
# The cache is $HVWG_CACHE_DIR (default /var/cache/hvwgd-tests); a build takes about 2 minutes.
# usage: base.sh LIBPKG...   (extra packages: the Depends of the .deb under test)
set -euo pipefail
cache=${HVWG_CACHE_DIR:-/var/cache/hvwgd-tests}
# the mirror and proxy apt uses here (debootstrap's wget reads neither from apt's configuration)
apt_mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list |
             grep -v security | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' |
             awk 'NR == 1 {print $1}' || true)   # (no early exit: pipefail would see SIGPIPE)
mirror=${HVWG_DEBIAN_MIRROR:-${apt_mirror:-http://deb.debian.org/debian}}
proxy=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | awk 'NR == 1' || true)
[ -n "$proxy" ] && [ -z "${http_proxy:-}" ] && export http_proxy=$proxy
pkgs=(systemd systemd-sysv dbus udev linux-image-cloud-amd64 initramfs-tools "$@")
key=$( { cat "$0"; printf '%s\n' "${pkgs[@]}" | sort -u; } | sha256sum | cut -c1-16)
out="$cache/debian12-$key.tar"
if [ -f "$out" ]; then echo "$out"; exit 0; fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'umount -R "$work/root/proc" "$work/root/sys" 2>/dev/null || true; rm -rf "$work"' EXIT
inc=$(IFS=,; echo "${pkgs[*]}")
echo "base.sh: debootstrap Debian 12 (minbase + $inc) into the cache, once" >&2
try=1
until debootstrap --variant=minbase --include="$inc" bookworm "$work/root" "$mirror" >"$work/log" 2>&1; do
  tail -20 "$work/log" >&2
  [ $try -ge 2 ] && { echo "base.sh: debootstrap failed twice (mirror $mirror)" >&2; exit 1; }
  echo "base.sh: debootstrap failed (mirror $mirror); once more" >&2
  try=$((try + 1)); umount -R "$work/root/proc" "$work/root/sys" 2>/dev/null || true; rm -rf "$work/root"
done
ls "$work/root"/boot/vmlinuz-* "$work/root"/boot/initrd.img-* >/dev/null
# what the test never reads: package caches, docs, locales
rm -rf "$work/root"/var/cache/apt/*.bin "$work/root"/var/cache/apt/archives/*.deb "$work/root"/var/lib/apt/lists/* \
       "$work/root"/usr/share/doc/* "$work/root"/usr/share/locale/* "$work/root"/usr/share/man/*
tar --numeric-owner -C "$work/root" -cf "$work/base.tar" .
mv "$work/base.tar" "$out"
echo "$out"
