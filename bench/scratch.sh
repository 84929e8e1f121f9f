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
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(df -T "$work" | awk 'NR==2{print $2}'); mke2fs $(mke2fs -V 2>&1 | head -1 | awk '{print $2}')"
printf '%-8s %-14s %10s %14s %s\n' size tool seconds "allocated MiB" e2fsck
for size in 20G 200G 2000G; do
  declare -A best=() alloc=()
  for tool in hvwgd mke2fs mke2fs-lazy; do
    for run in $(seq "$runs"); do
      img="$work/$tool.img"; rm -f "$img"
      sync
      case $tool in
        hvwgd)       t0=$(now); "$hvwgd" --format-scratch "$img" "$size" >/dev/null; t1=$(now) ;;
        mke2fs)      truncate -s "$size" "$img"; t0=$(now); mke2fs -F -q -t ext4 -L scratch "$img"; t1=$(now) ;;
        mke2fs-lazy) truncate -s "$size" "$img"; t0=$(now)
                     mke2fs -F -q -t ext4 -L scratch -E lazy_itable_init=1,lazy_journal_init=1 "$img"; t1=$(now) ;;
      esac
      t=$(echo "$t1 - $t0" | bc)
      if [ -z "${best[$tool]:-}" ] || (( $(echo "$t < ${best[$tool]}" | bc) )); then best[$tool]=$t; fi
    done
    alloc[$tool]=$(( $(stat -c %b "$img") * 512 / 1048576 ))
    fsck=$(e2fsck -fn "$img" >/dev/null 2>&1 && echo clean || echo "NOT CLEAN")
    printf '%-8s %-14s %10.3f %14s %s\n' "$size" "$tool" "${best[$tool]}" "${alloc[$tool]}" "$fsck"
    rm -f "$img"
  done
  echo "  $size: mke2fs-lazy/hvwgd time $(echo "scale=2; ${best[mke2fs-lazy]} / ${best[hvwgd]}" | bc)x," \
       "mke2fs/hvwgd time $(echo "scale=2; ${best[mke2fs]} / ${best[hvwgd]}" | bc)x," \
       "allocated mke2fs/hvwgd $(echo "scale=1; ${alloc[mke2fs]} / (${alloc[hvwgd]} + 0.001)" | bc)x," \
       "mke2fs-lazy/hvwgd $(echo "scale=2; ${alloc[mke2fs-lazy]} / (${alloc[hvwgd]} + 0.001)" | bc)x"
  unset best alloc
done
