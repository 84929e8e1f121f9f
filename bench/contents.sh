#!/usr/bin/env bash
# Contents scan benchmark (not a test): what looking inside an image adds to an import. A 4 GiB
# MBR image whose ext4 root is a real Debian 12 system (the systemd boot test's debootstrap root,
# tests/boot/systemd/base.sh, cached) plus a swap partition. Measured in one run, 5 times each,
# page cache dropped before each:
#   - `hvwgd --lint` (partition table, blkid, the libext2fs scan, the findings), as a process
#   - an import of the same image by a running hvwgd (FetchImage file://, raw): its log's
#     "inspect" and "contents" figures against the whole job
# The peer (virt-inspector) boots an appliance VM and is not packaged here; for scale the
# mount-free alternative `debugfs -R "cat /etc/os-release"` is timed on the same partition.
# usage: bench/contents.sh [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
work=$(mktemp -d /var/tmp/hvwg-bench-contents.XXXXXX)
trap 'rm -rf "$work"' EXIT
base=$(bash "$top/tests/boot/systemd/base.sh")
mkdir "$work/root"
tar --numeric-owner -C "$work/root" -xf "$base"
printf 'UUID=0 / ext4 errors=remount-ro 0 1\nLABEL=scratch /scratch ext4 defaults,nofail 0 2\n' > "$work/root/etc/fstab"
img="$work/debian.img"
truncate -s 4G "$img"
printf 'label: dos\nstart=2048, size=3800M, type=83, bootable\ntype=82\n' | sfdisk -q --no-reread --no-tell-kernel "$img"
mke2fs -q -F -t ext4 -d "$work/root" -E offset=$((2048 * 512)) "$img" 3800M
rm -rf "$work/root"
alloc=$(du -k "$img" | cut -f1)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

lint=() debugfs_t=()
for i in 1 2 3 4 5; do
  drop; t0=$(date +%s.%N); "$build/hvwgd" --lint "$img" > "$work/lint.out" || true; t1=$(date +%s.%N)
  lint+=("$(echo "$t1 - $t0" | bc)")
  drop; t0=$(date +%s.%N); debugfs -R "cat /etc/os-release" "$img?offset=$((2048 * 512))" >/dev/null 2>&1 || true; t1=$(date +%s.%N)
  debugfs_t+=("$(echo "$t1 - $t0" | bc)")
done

# an import by a running daemon (private bus), its own timings
export HVWG_SRC=$top HVWGD=$build/hvwgd HVWGCTL=$build/hvwgctl HVWG_BUILD=$build
python3 - "$img" "$work" <<'EOF' > "$work/import.out"
import os, re, shutil, statistics, sys, subprocess
sys.path.insert(0, os.path.join(os.environ["HVWG_SRC"], "tests/integration"))
import harness as h
img, work = sys.argv[1], sys.argv[2]
with h.Env() as env:
    os.link(img, os.path.join(env.src, "debian.img")) if os.stat(img).st_dev == os.stat(env.src).st_dev else shutil.copy(img, env.src)
    for i in range(5):
        subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], check=False)
        rc, res, err = env.fetch("file://" + os.path.join(env.src, "debian.img"), f"d{i}", raw=True)
        assert rc == 0, err
        env.call("RemoveImage", "s", f"d{i}")
    rows = re.findall(r"streamed \d+ -> \d+ bytes in ([\d.]+) s \([^)]*\), fsync ([\d.]+) s, inspect ([\d.]+) s, contents ([\d.]+) s", env.log())
    for r in rows:
        print(" ".join(r))
EOF
echo "contents scan benchmark, 5 runs each, page cache dropped; $(nproc) CPUs: $cpu"
echo "  image: 4 GiB MBR, ext4 root of a real Debian 12 (debootstrap minbase + systemd + cloud kernel), $((alloc / 1024)) MiB allocated, swap"
echo "  what it found: $(grep -E '^note +os' "$work/lint.out" | sed 's/^note *os *//')"
printf '  hvwgd --lint (whole process: table, blkid, scan, lint): median %.3f s\n' "$(printf '%s\n' "${lint[@]}" | med)"
printf '  debugfs -R "cat /etc/os-release" (one file, for scale): median %.3f s\n' "$(printf '%s\n' "${debugfs_t[@]}" | med)"
python3 - "$work/import.out" <<'EOF2'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
job = statistics.median(sum(r) for r in rows)
ins = statistics.median(r[2] for r in rows)
con = statistics.median(r[3] for r in rows)
print(f"  import by hvwgd (FetchImage file://, raw, 4 GiB sparse): job median {job:.2f} s; inspect {ins:.3f} s; contents scan "
      f"{con:.3f} s = {100 * con / job:.1f} % of the job (goal: under 0.050 s); {len(rows)} imports")
EOF2
