#!/usr/bin/env bash
# Scratch-disk benchmark (not a test): hvwgd's in-process formatter vs mke2fs (Debian default)
# and vs mke2fs with lazy init, on sparse files of 20, 200 and 2000 GiB, in one run. Each result
# is checked with e2fsck -fn. Prints best-of-N seconds, allocated MiB and the ratios.
# usage: bench/scratch.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
runs=3
[ "${1:-}" = "--runs" ] && runs=$2
bash tools/deps.sh
dir=$(bash tools/build.sh normal)
hvwgd="$top/$dir/hvwgd"
work=$(mktemp -d /var/tmp/hvwg-scratch-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
# process start-up is not what CreateMachine pays (the daemon is running): hvwgd reports its
# in-process time, and mke2fs's own start-up (mke2fs -V, best of 5) is subtracted from its times
exec_base=9
for i in 1 2 3 4 5; do
  t0=$(now); mke2fs -V >/dev/null 2>&1; t=$(echo "$(now) - $t0" | bc)
  (( $(echo "$t < $exec_base" | bc) )) && exec_base=$t
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(df -T "$work" | awk 'NR==2{print $2}'); mke2fs $(mke2fs -V 2>&1 | head -1 | awk '{print $2}'), its start-up ${exec_base}s"
printf '%-8s %-14s %12s %12s %14s %s\n' size tool "wall s" "format s" "allocated MiB" e2fsck
for size in 20G 200G 2000G; do
  declare -A best=() wall=() alloc=()
  for tool in hvwgd mke2fs mke2fs-lazy; do
    for run in $(seq "$runs"); do
      img="$work/$tool.img"; rm -f "$img"
      sync
      case $tool in
        hvwgd)       t0=$(now); out=$("$hvwgd" --format-scratch "$img" "$size" 2>&1 >/dev/null); t1=$(now)
                     f=$(echo "$out" | sed -n 's/.* in \([0-9.]*\) ms.*/\1/p'); f=$(echo "scale=6; $f / 1000" | bc) ;;
        mke2fs)      truncate -s "$size" "$img"; t0=$(now); mke2fs -F -q -t ext4 -L scratch "$img"; t1=$(now)
                     f=$(echo "$t1 - $t0 - $exec_base" | bc) ;;
        mke2fs-lazy) truncate -s "$size" "$img"; t0=$(now)
                     mke2fs -F -q -t ext4 -L scratch -E lazy_itable_init=1,lazy_journal_init=1 "$img"; t1=$(now)
                     f=$(echo "$t1 - $t0 - $exec_base" | bc) ;;
      esac
      w=$(echo "$t1 - $t0" | bc)
      if [ -z "${best[$tool]:-}" ] || (( $(echo "$f < ${best[$tool]}" | bc) )); then best[$tool]=$f; wall[$tool]=$w; fi
    done
    alloc[$tool]=$(echo "scale=1; $(stat -c %b "$img") * 512 / 1048576" | bc)
    fsck=$(e2fsck -fn "$img" >/dev/null 2>&1 && echo clean || echo "NOT CLEAN")
    printf '%-8s %-14s %12.4f %12.4f %14s %s\n' "$size" "$tool" "${wall[$tool]}" "${best[$tool]}" "${alloc[$tool]}" "$fsck"
    rm -f "$img"
  done
  echo "  $size: format time mke2fs-lazy/hvwgd $(echo "scale=2; ${best[mke2fs-lazy]} / ${best[hvwgd]}" | bc)x," \
       "mke2fs/hvwgd $(echo "scale=2; ${best[mke2fs]} / ${best[hvwgd]}" | bc)x;" \
       "allocated mke2fs/hvwgd $(echo "scale=1; ${alloc[mke2fs]} / ${alloc[hvwgd]}" | bc)x," \
       "mke2fs-lazy/hvwgd $(echo "scale=2; ${alloc[mke2fs-lazy]} / ${alloc[hvwgd]}" | bc)x"
  unset best wall alloc
done
