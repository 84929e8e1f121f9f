#!/usr/bin/env bash
# cmake --install with DESTDIR: everything lands inside DESTDIR, where the system bus and systemd
# read it, and the unit starts the binary that was installed. Usage: test_install.sh BUILD_DIR
set -euo pipefail
build=$1
dest=$(mktemp -d /tmp/hvwg-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT
DESTDIR="$dest" cmake --install "$build" >"$dest.log" 2>&1 || { cat "$dest.log"; exit 1; }
outside=$(grep -E "^-- (Installing|Up-to-date): " "$dest.log" | sed -E 's/^-- [A-Za-z-]+: //' | grep -v "^$dest/" || true)
rm -f "$dest.log"
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
[ -z "$outside" ] && ok "nothing installed outside DESTDIR" || bad "installed outside DESTDIR: $outside"
for f in usr/share/dbus-1/system.d/org.hepix.hvwg1.conf usr/share/dbus-1/system-services/org.hepix.hvwg1.service; do
  [ -f "$dest/$f" ] && ok "/$f (where the system bus reads it)" || bad "/$f missing"
done
unit=$(find "$dest" -name hvwgd.service -path "*systemd/system*" | head -1)
[ -n "$unit" ] && ok "unit ${unit#$dest}" || bad "no hvwgd.service in a systemd unit directory"
exe=$(sed -n 's/^ExecStart=//p' "$unit")
[ -x "$dest$exe" ] && ok "ExecStart=$exe is the installed binary" || bad "ExecStart=$exe does not exist under DESTDIR"
grep -q "^ExecReload=" "$unit" && ok "the unit can reload" || bad "no ExecReload="
sysusers=$(find "$dest" -path "*sysusers.d/hvwgd.conf" | head -1)
[ -n "$sysusers" ] && grep -q "^g hvwg" "$sysusers" && ok "sysusers.d makes the group hvwg" || bad "no sysusers.d entry for hvwg"
conf=$(find "$dest" -path "*/hvwgd/hvwgd.conf" | head -1)
[ -n "$conf" ] && ok "configuration ${conf#$dest}" || bad "no hvwgd.conf"
"$dest$exe" --help | grep -q -- "--config=PATH        configuration file (default ${conf#$dest}" && ok "hvwgd's default config path is the installed one" ||
  bad "hvwgd --help names another default configuration than ${conf#$dest}"
[ $fail -eq 0 ] && echo "1 passed, 0 failed" || { echo "0 passed, 1 failed"; exit 1; }
