#!/usr/bin/env bash
# The packages: the .deb built by tools/build-deb.sh (lintian without errors; Depends from
# shlibs, Recommends, conffile, the unit enabled and the group made by its maintainer scripts)
# and the RPM spec for EL9, which cannot be built here: rpmspec -P must parse it, its version
# must be the project's, and its %files must name exactly what the .deb ships (the same
# cmake install). usage: test_packages.sh DIR  (DIR holds hvwgd_*.deb and its .changes)
set -euo pipefail
dir=$(realpath "$1")
here=$(cd "$(dirname "$0")/../.." && pwd)
deb=$(ls "$dir"/hvwgd_*_*.deb)
fail=0; n=0
ok() { echo "ok   $*"; n=$((n + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# lintian: no errors (warnings and infos are printed for the record)
if lint=$(lintian --fail-on error "$dir"/hvwgd_*.changes 2>&1); then
  ok "lintian: no errors ($(grep -c '^W:' <<<"$lint" || true) warnings)"
else
  bad "lintian reports errors"; fi
grep -E '^[EW]:' <<<"$lint" || true

depends=$(dpkg-deb -f "$deb" Depends); recommends=$(dpkg-deb -f "$deb" Recommends)
for lib in libvirt0 libsystemd0 libext2fs2 libisal2 libcurl4 libssl3 libxml2 libjson-c5 libudev1 libblkid1; do
  grep -q "\b$lib\b" <<<"$depends" || bad "Depends lacks $lib (shlibs): $depends"
done
ok "Depends from shlibs: $depends"
grep -q "libvirt-daemon-system" <<<"$recommends" && grep -q "qemu-system-x86" <<<"$recommends" &&
  ok "Recommends: $recommends" || bad "Recommends: $recommends"
ctl=$(mktemp -d); trap 'rm -rf "$ctl"' EXIT
dpkg-deb -e "$deb" "$ctl/DEBIAN"
grep -qx /etc/hvwgd/hvwgd.conf "$ctl/DEBIAN/conffiles" && ok "/etc/hvwgd/hvwgd.conf is a conffile" || bad "no conffile"
grep -q "systemd-sysusers.* hvwgd.conf" "$ctl/DEBIAN/postinst" && ok "postinst makes the group (systemd-sysusers hvwgd.conf)" || bad "postinst does not run systemd-sysusers"
grep -q "deb-systemd-helper enable 'hvwgd.service'" "$ctl/DEBIAN/postinst" && ok "postinst enables hvwgd.service" || bad "postinst does not enable the unit"
mapfile -t files < <(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ {sub(/^\./, "", $6); print $6}' | grep -v '^/usr/share/doc/')
for f in /usr/sbin/hvwgd /usr/bin/hvwgctl /lib/systemd/system/hvwgd.service /usr/lib/sysusers.d/hvwgd.conf \
         /usr/share/dbus-1/system.d/org.hepix.hvwg1.conf /usr/share/dbus-1/system-services/org.hepix.hvwg1.service; do
  printf '%s\n' "${files[@]}" | grep -qx "$f" || bad "the .deb lacks $f"
done
ok "the .deb ships ${#files[@]} files where systemd and the system bus look"

# the RPM spec, with EL9's macro values (Debian's rpm has no systemd-rpm-macros)
spec="$here/rpm/hvwgd.spec"
if ! parsed=$(rpmspec -P --define '_unitdir /usr/lib/systemd/system' --define '_sysusersdir /usr/lib/sysusers.d' \
              --define '_sbindir /usr/sbin' --define '_bindir /usr/bin' --define '_sysconfdir /etc' \
              --define '_datadir /usr/share' --define '_mandir /usr/share/man' "$spec" 2>&1); then
  bad "rpmspec -P: $parsed"
else
  ok "rpmspec -P parses rpm/hvwgd.spec"
  version=$(sed -n 's/^Version:[[:space:]]*//p' <<<"$parsed")
  project=$(sed -n 's/^project(hvwgd VERSION \([0-9.]*\).*/\1/p' "$here/CMakeLists.txt")
  debver=$(dpkg-deb -f "$deb" Version)
  [ "$version" = "$project" ] && [ "$debver" = "$project" ] && ok "spec, CMake and .deb agree on version $project" ||
    bad "versions: spec $version, CMake $project, deb $debver"
  mapfile -t pats < <(sed -n '/^%files/,/^%changelog/p' <<<"$parsed" | grep -vE '^%(files|changelog|license|doc|dir)|^$' |
                      sed -E 's/^%config\(noreplace\) //')
  # EL9 keeps units in /usr/lib/systemd/system, Debian 12 in /lib/systemd/system
  mapfile -t elfiles < <(printf '%s\n' "${files[@]}" | sed 's|^/lib/systemd/|/usr/lib/systemd/|')
  for f in "${elfiles[@]}"; do
    hit=no; for p in "${pats[@]}"; do [[ $f == $p ]] && { hit=yes; break; }; done
    [ $hit = yes ] || bad "the spec's %files misses $f"
  done
  for p in "${pats[@]}"; do
    hit=no; for f in "${elfiles[@]}"; do [[ $f == $p ]] && { hit=yes; break; }; done
    [ $hit = yes ] || bad "the spec's %files names $p, which the install does not make"
  done
  ok "the spec's %files (${#pats[@]} entries) match the installed files"
  grep -q "^%sysusers_create_compat" <<<"$parsed" && grep -q "^%systemd_post hvwgd.service" <<<"$parsed" &&
    ok "the spec makes the group (%sysusers_create_compat) and enables the unit (%systemd_post)" || bad "spec scriptlets"
fi
echo "$n passed, $fail failed"
[ $fail -eq 0 ]
