#!/bin/bash
# Runs inside the Debian 12 guest of the systemd boot test (hvwg-boottest.service, after
# multi-user.target), with hvwgd installed from the package and started by systemd at boot.
# Every check prints "HVWG-CHECK ok|FAIL <what>" on the serial console; the host reads them.
# The sources: /srv/hvwg-src (small.img.gz, small.gz.sha512, big8.img.gz), /srv/hvwg-slow
# (slow.img.gz, on a disk QEMU throttles).
set -u
pass=0; fail=0
say() { echo "HVWG-CHECK $*"; }
ok() { say "ok   $*"; pass=$((pass + 1)); }
bad() { say "FAIL $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@" >/tmp/out 2>&1; then ok "$what"; else bad "$what: $(tail -c 400 /tmp/out | tr '\n' ' ')"; fi; }
refused() { local what=$1; shift; if "$@" >/tmp/out 2>&1; then bad "$what: succeeded: $(tail -c 300 /tmp/out | tr '\n' ' ')"; else ok "$what ($(head -c 120 /tmp/out | tr '\n' ' '))"; fi; }
as() { local user=$1; shift; runuser -u "$user" -- "$@"; }
prop() { systemctl show -p "$1" --value hvwgd.service; }
n_reloads() { journalctl -b -u hvwgd -o cat --no-pager | grep -c "^reload: configuration re-read"; }
# systemctl reload, then the daemon's word that the new configuration is in force (systemd 252
# may end the reload job when the ExecReload= command exits, before hvwgd's READY=1)
reload() {
  local n0 waited=0; n0=$(n_reloads)
  systemctl reload hvwgd || return 1
  while [ "$(n_reloads)" -le "$n0" ]; do
    [ $waited -ge 100 ] && { echo "no 'configuration re-read' in the journal"; return 1; }
    sleep 0.1; waited=$((waited + 1))
  done
  echo "applied $((waited * 100)) ms after systemctl reload returned"
}

say "start $(uname -r), systemd $(systemctl --version | head -1 | cut -d' ' -f2)"
# 1. started by systemd at boot, Type=notify, ready
for _ in $(seq 60); do [ "$(prop ActiveState)" = active ] && break; sleep 1; done
[ "$(systemctl is-enabled hvwgd.service)" = enabled ] && ok "hvwgd.service enabled by the package" || bad "hvwgd.service not enabled"
[ "$(prop ActiveState)/$(prop SubState)" = active/running ] && ok "hvwgd active/running at boot" || bad "hvwgd is $(prop ActiveState)/$(prop SubState)"
[ "$(prop Type)" = notify ] && ok "Type=notify (READY=1 received)" || bad "Type=$(prop Type)"
pid=$(prop MainPID)
[ "$(readlink /proc/$pid/exe)" = /usr/sbin/hvwgd ] && ok "MainPID $pid is /usr/sbin/hvwgd" || bad "MainPID $pid is $(readlink /proc/$pid/exe)"
getent group hvwg >/dev/null && ok "group hvwg made by the package (sysusers)" || bad "no group hvwg"

# 2. the hardening is in force
score=$(systemd-analyze security --no-pager hvwgd.service 2>/dev/null | sed -n 's/.*Overall exposure level for hvwgd.service: \([0-9.]*\).*/\1/p')
if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'; then ok "systemd-analyze security on the live unit: $score (<= 3.0)"
else bad "systemd-analyze security: '${score:-no score}'"; fi
st=/proc/$pid/status
grep -q "^NoNewPrivs:[[:space:]]*1" $st && ok "NoNewPrivs in force" || bad "NoNewPrivs not set"
grep -q "^Seccomp:[[:space:]]*2" $st && ok "seccomp filter in force" || bad "no seccomp filter"
capbnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' $st)
[ "$capbnd" != 000001ffffffffff ] && [ "$capbnd" != 000000ffffffffff ] && ok "capability bounding set reduced ($capbnd)" || bad "full capability set $capbnd"
nsenter -t "$pid" -m sh -c 'touch /usr/hvwg-probe' 2>/dev/null && { rm -f /usr/hvwg-probe; bad "/usr writable for hvwgd"; } || ok "ProtectSystem=strict: /usr read-only for hvwgd"

# 3. the client over the real system bus: root, a member of hvwg, nobody
useradd -M -N -g users -G hvwg hvwgtest
sha=$(cat /srv/hvwg-src/small.gz.sha512)
check "root: hvwgctl status" hvwgctl status
check "root: hvwgctl fetch file:// (under RestrictSUIDSGID's seccomp filter)" hvwgctl -q fetch file:///srv/hvwg-src/small.img.gz small --sha512="$sha"
check "root: hvwgctl inspect" sh -c 'hvwgctl inspect small | grep -q 83'
check "root: the image is published 0440 root:hvwg" sh -c '[ "$(stat -c %a:%U:%G /var/lib/hvwgd/images/small.raw)" = 440:root:hvwg ]'
check "hvwg member: hvwgctl status" as hvwgtest hvwgctl status
check "hvwg member: hvwgctl fetch" as hvwgtest hvwgctl -q fetch file:///srv/hvwg-src/small.img.gz small2 --sha512="$sha"
check "hvwg member: hvwgctl inspect" as hvwgtest hvwgctl inspect small2
check "hvwg member: hvwgctl rm" as hvwgtest hvwgctl rm small2
check "nobody: hvwgctl images (reading is allowed)" as nobody hvwgctl images
refused "nobody: hvwgctl fetch refused by the bus policy" as nobody hvwgctl fetch file:///srv/hvwg-src/small.img.gz evil
refused "nobody: hvwgctl rm refused by the bus policy" as nobody hvwgctl rm small
check "the image is still there" sh -c 'hvwgctl images | grep -q "^small "'

# 4. a machine on test:///default, created and destroyed inside the unit's sandbox
check "hvwgctl create on test:///default" hvwgctl -q create small vm1 --cores=1
check "hvwgctl machines lists vm1 with its scratch disk" sh -c 'hvwgctl machines | grep -q "^vm1 " && [ -f /var/lib/hvwgd/machines/vm1/scratch.img ]'
check "hvwgctl stop, show: shut-off, then start: running" sh -c 'hvwgctl -q stop vm1 && hvwgctl show vm1 | grep -q "State: *shut-off" && hvwgctl -q start vm1 && hvwgctl --json show vm1 | grep -q "\"state\":\"running\""'
check "hvwg member: a machine of its own, started and stopped" sh -c 'runuser -u hvwgtest -- hvwgctl -q create small vm2 --cores=1 --scratch=0 && runuser -u hvwgtest -- hvwgctl -q stop vm2 --force'
check "hvwg member: root's machine is not its to destroy (exit 4, whose it is)" sh -c 'out=$(runuser -u hvwgtest -- hvwgctl destroy vm1 2>&1); [ $? -eq 4 ] && echo "$out" | grep -q "belongs to uid 0"'
check "hvwgctl destroy" hvwgctl destroy vm1
check "machine directory gone" sh -c '! [ -e /var/lib/hvwgd/machines/vm1 ]'
check "hvwg member: destroys its own machine" as hvwgtest hvwgctl destroy vm2
check "the audit trail in the journal names the refused caller" sh -c "journalctl -b -u hvwgd -o cat --no-pager | grep -q 'audit: uid=$(id -u hvwgtest) pid=[0-9]* DestroyMachine(\"vm1\", {}) → refused'"

# 5. systemctl reload applies a changed limit (MaxImageSize) without a restart
check "big8 (8 MiB) fetches under MaxImageSize=64G" hvwgctl -q fetch file:///srv/hvwg-src/big8.img.gz big8
check "rm big8" hvwgctl rm big8
printf '[Storage]\nMaxImageSize=4M\n' > /etc/hvwgd/hvwgd.conf.d/50-limit.conf
if reload >/tmp/out 2>&1; then ok "systemctl reload hvwgd: $(cat /tmp/out)"; else bad "systemctl reload: $(cat /tmp/out)"; fi
[ "$(prop MainPID)" = "$pid" ] && [ "$(prop ActiveState)" = active ] && ok "same process, still active after the reload" || bad "reload restarted hvwgd or it failed ($(prop MainPID), $(prop ActiveState))"
refused "after the reload, MaxImageSize=4M refuses big8" hvwgctl fetch file:///srv/hvwg-src/big8.img.gz big8
grep -qi "size" /tmp/out && ok "the refusal names the size limit" || bad "refusal says: $(cat /tmp/out)"
rm /etc/hvwgd/hvwgd.conf.d/50-limit.conf
check "systemctl reload back" reload

# 6. systemctl stop cancels a running fetch cleanly
hvwgctl --no-wait fetch file:///srv/hvwg-slow/slow.img.gz slow >/tmp/job 2>&1 || bad "slow fetch did not start: $(cat /tmp/job)"
started=no
for _ in $(seq 60); do
  if hvwgctl --json jobs | grep -q '"phase": *"download"'; then started=yes; break; fi
  sleep 0.5
done
[ $started = yes ] && ok "a slow fetch is downloading" || bad "the slow fetch never ran: $(hvwgctl --json jobs)"
ls -A /var/lib/hvwgd/images/.tmp | grep -q . && ok "its temp file exists" || bad "no temp file while downloading"
t0=$(date +%s)
check "systemctl stop hvwgd" systemctl stop hvwgd
t1=$(date +%s)
[ "$(prop Result)" = success ] && ok "stopped cleanly in $((t1 - t0)) s (Result=success, not killed)" || bad "Result=$(prop Result) after $((t1 - t0)) s"
[ -z "$(ls -A /var/lib/hvwgd/images/.tmp 2>/dev/null)" ] && ok "no temp file left" || bad "left in .tmp: $(ls -A /var/lib/hvwgd/images/.tmp)"
! [ -e /var/lib/hvwgd/images/slow.raw ] && ok "no half image published" || bad "slow.raw exists"
check "started again" systemctl start hvwgd
check "the first image survived the restart" sh -c 'hvwgctl images | grep -q "^small "'

# 7. the journal has hvwgd's log with priorities
n_info=$(journalctl -b -u hvwgd -p info -o cat --no-pager | wc -l)
n_warn=$(journalctl -b -u hvwgd -p warning -o cat --no-pager | wc -l)
[ "$n_info" -gt 0 ] && [ "$n_warn" -gt 0 ] && [ "$n_warn" -lt "$n_info" ] &&
  ok "journalctl -u hvwgd: $n_info lines at info or above, $n_warn at warning or above" || bad "journal: info=$n_info warning=$n_warn"
journalctl -b -u hvwgd -p warning -o short-monotonic --no-pager | tail -n 5 | sed 's/^/HVWG-LOG /'
journalctl -b -u hvwgd -o cat --no-pager | grep -qi "cancel" && ok "the journal tells of the canceled fetch" || bad "no cancel in the journal"

say "done $pass passed $fail failed"
