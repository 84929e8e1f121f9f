#!/usr/bin/env bash
# Import benchmark (not a test): the same 4 GiB reference .gz through systemd-import,
# pigz|cp --sparse, igzip|cp --sparse, hvwgd (sha512 on) and the ISA-L in-memory ceiling, in one
# run. Verifies every output against the reference raw and prints times, MB/s, allocated bytes,
# hvwgd's peak RSS, SHA-512's own time on the download, hvwgd's start-up to ready and the ratios.
# Then parallel decoding: the same raw compressed with pigz --independent and with bgzip,
# imported by hvwgd with InflateThreads=1 and 2 (and the plain file with 2), against the
# single-thread ISA-L ceiling of the plain file. Last, the plain file decoded from blocks found
# by trial (InflateSpeculate=yes): the decoder alone with 1 and 2 threads, and an import.
# The disk's side is measured too (bench/write_ceiling.c): the image's data written the way
# hvwgd's writer does, then fsync, nothing decoded.
# Run as root: bench/import.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
runs=1
[ "${1:-}" = "--runs" ] && runs=$2
data=${BENCH_DATA:-$top/bench/data}
mkdir -p "$data"

bash tools/deps.sh
for p in systemd-container isal pigz bc tabix; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    { echo "installing $p"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
dir=$(bash tools/build.sh normal)
hvwgd="$top/$dir/hvwgd"; hvwgctl="$top/$dir/hvwgctl"; ceiling="$top/$dir/bench_isal_ceiling"

ref="$data/ref.raw"; gz="$data/ref.raw.gz"
if [ ! -s "$gz" ]; then
  echo "== building the reference image (once; kept in $data)"
  stage="$data/stage"; rm -rf "$stage"; mkdir -p "$stage/usr" "$stage/data"
  # ~1.7 GB of real files from /usr, chosen deterministically (sorted paths, size-capped)
  find /usr/share /usr/lib -xdev -type f -size -64M -printf '%s\t%p\n' 2>/dev/null | LC_ALL=C sort -t"$(printf '\t')" -k2 |
    awk -F'\t' 'BEGIN{t=0; stop=0} {if (t + $1 > 1700*1024*1024) stop=1; if (!stop) {t += $1; print $2}}' > "$data/files.txt"
  tar -C / -cf - --files-from=<(sed 's|^/||' "$data/files.txt") 2>/dev/null | tar -C "$stage/usr" -xf -
  # 128 MiB of pseudo-random (incompressible, deterministic) and 128 MiB of zeros
  (openssl enc -aes-128-ctr -K 00112233445566778899aabbccddeeff -iv 0 -nosalt -in /dev/zero 2>/dev/null || true) |
    head -c $((128 << 20)) > "$stage/data/random.bin"
  head -c $((128 << 20)) /dev/zero > "$stage/data/zeros.bin"
  rm -f "$ref"; truncate -s 4G "$ref"
  printf 'label: dos\nlabel-id: 0x12345678\nstart=2048, size=3584M, type=83, bootable\ntype=82\n' |
    sfdisk -q --no-reread --no-tell-kernel "$ref"
  E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -F -t ext4 -L bench -U 6f1c3d2e-0000-4000-8000-000000000001 \
    -E offset=$((2048 * 512)),hash_seed=6f1c3d2e-0000-4000-8000-000000000002 -d "$stage" "$ref" 3584M
  truncate -s 1M "$data/swap"; mkswap -q -U 6f1c3d2e-0000-4000-8000-000000000003 "$data/swap" >/dev/null
  dd if="$data/swap" of="$ref" bs=512 seek=$((2048 + 3584 * 2048)) conv=notrunc status=none
  rm -rf "$stage" "$data/swap"
  gzip -6 -c "$ref" > "$gz.tmp" && mv "$gz.tmp" "$gz"
  sha256sum "$ref" | cut -d' ' -f1 > "$data/ref.sha256"
fi
[ -s "$data/ref.sha256" ] || sha256sum "$ref" | cut -d' ' -f1 > "$data/ref.sha256"
want=$(cat "$data/ref.sha256")
ref_alloc=$(( $(stat -c %b "$ref") * 512 ))
gz_size=$(stat -c %s "$gz")
raw_size=$(stat -c %s "$ref")
sha512=$(sha512sum "$gz" | cut -d' ' -f1)
# the same raw for parallel decoding: pigz --independent and BGZF (bgzip), level 6
pgz="$data/ref.raw.pigzi.gz"; bgz="$data/ref.raw.bgz"
[ -s "$pgz" ] || { pigz -6 --independent -c "$ref" > "$pgz.tmp" && mv "$pgz.tmp" "$pgz"; }
[ -s "$bgz" ] || { bgzip -@ "$(nproc)" -l 6 -c "$ref" > "$bgz.tmp" && mv "$bgz.tmp" "$bgz"; }

. tools/lib.sh
hv_bench_work "$data" run
work=$HV_WORK
mkdir -p "$work/sd"

now() { date +%s.%N; }
declare -A RSS SUM STREAM FSYNC MARK CPU
WC_W=; WC_F=
# hv_import NAME FILE THREADS [startup]: a fresh daemon ([Fetch] InflateThreads=THREADS, and
# InflateSpeculate=yes for THREADS like 2s; with "startup", its start-up to ready is timed too),
# one FetchImage with sha512, timed from the call to the job's end; output checked, peak RSS kept.
hv_import() {
  local name=$1 file=$2 threads=${3%s} t0 conf="$work/hvwgd-$1.conf" spec=no
  [ "$3" != "$threads" ] && spec=yes
  { cat "$work/hvwgd.conf"; printf '[Fetch]\nInflateThreads=%s\nInflateSpeculate=%s\n' "$threads" "$spec"; } > "$conf"
  [ -n "${SUM[$file]:-}" ] || SUM[$file]=$(sha512sum "$file" | cut -d' ' -f1)
  hv_private_bus "$work" "$top/dbus/org.hepix.hvwg1.conf"
  # start-up to ready (the bus name taken), polled every 5 ms; the default configuration tries
  # qemu:///system, as a node started by bus activation would
  t0=$(now)
  "$hvwgd" --bus-address="$HV_ADDR" --config="$conf" 2>>"$work/hvwgd.log" &
  HV_DAEMON_PID=$!; HV_PIDS+=($HV_DAEMON_PID)
  until busctl --address="$HV_ADDR" status org.hepix.hvwg1 >/dev/null 2>&1; do sleep 0.005; done
  [ "${4:-}" = startup ] && best startup "$(echo "$(now) - $t0" | bc)"
  settle; t0=$(now)
  "$hvwgctl" --bus-address="$HV_ADDR" --quiet fetch "file://$file" bench --sha512="${SUM[$file]}"
  best "$name" "$(echo "$(now) - $t0" | bc)"
  RSS[$name]=$(awk '/VmHWM/{print $2}' /proc/$HV_DAEMON_PID/status)
  # the daemon's own account: the streaming phase (read+SHA-512 | inflate | write) and the fsync
  local line; line=$(grep "streamed" "$work/hvwgd.log" | tail -1)
  STREAM[$name]=$(sed -E 's/.* bytes in ([0-9.]+) s.*/\1/' <<<"$line")
  CPU[$name]=$(sed -E 's/.*\(CPU: ([^)]*)\).*/\1/' <<<"$line")
  FSYNC[$name]=$(sed -E 's/.*fsync ([0-9.]+) s.*/\1/' <<<"$line")
  check "$name" "$work/images/bench.raw"
  "$hvwgctl" --bus-address="$HV_ADDR" rm bench
  hv_stop_all
}
settle() { sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true; cat "$gz" > /dev/null; }
declare -A T A
check() { # name file
  local got; got=$(sha256sum "$2" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "$1: OUTPUT DIFFERS from the reference raw" >&2; exit 1; }
  A[$1]=$(( $(stat -c %b "$2") * 512 ))
}
best() { # name seconds: keep the best of the runs
  if [ -z "${T[$1]:-}" ] || (( $(echo "$2 < ${T[$1]}" | bc) )); then T[$1]=$2; fi
}

echo "== reference: $(numfmt --to=iec $raw_size) raw, $(numfmt --to=iec $ref_alloc) allocated, $(numfmt --to=iec $gz_size) gzip"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(df -T "$work" | awk 'NR==2{print $2}') on $(df "$work" | awk 'NR==2{print $1}')"
for run in $(seq "$runs"); do
  echo "-- run $run/$runs"
  rm -f "$work/sd/bench.raw"; settle; t0=$(now)
  /lib/systemd/systemd-import raw --image-root="$work/sd" --sync=no "$gz" bench >/dev/null 2>&1
  best systemd-import "$(echo "$(now) - $t0" | bc)"; check systemd-import "$work/sd/bench.raw"; rm -f "$work/sd/bench.raw"

  rm -f "$work/pigz.raw"; settle; t0=$(now)
  pigz -dc "$gz" | cp --sparse=always /dev/stdin "$work/pigz.raw"
  best pigz-cp "$(echo "$(now) - $t0" | bc)"; check pigz-cp "$work/pigz.raw"; rm -f "$work/pigz.raw"

  rm -f "$work/igzip.raw"; settle; t0=$(now)
  igzip -dc "$gz" | cp --sparse=always /dev/stdin "$work/igzip.raw"
  best igzip-cp "$(echo "$(now) - $t0" | bc)"; check igzip-cp "$work/igzip.raw"; rm -f "$work/igzip.raw"

  hv_import hvwgd "$gz" 1 startup

  settle; t0=$(now)
  openssl dgst -sha512 "$gz" >/dev/null
  best sha512 "$(echo "$(now) - $t0" | bc)"
  settle
  read -r t _ _ < <("$ceiling" "$gz"); best isal-ceiling "$t"
  read -r t _ _ < <("$ceiling" "$gz" --zero-check); best isal-ceiling-zero "$t"
  # the same with the other core hashing all the while (these vCPUs slow each other down)
  ( while :; do openssl dgst -sha512 "$gz" >/dev/null; done ) & busy=$!
  read -r t _ _ < <("$ceiling" "$gz"); kill "$busy"; wait "$busy" 2>/dev/null || true; best isal-ceiling-busy "$t"
  # the disk's side: the image's data written durably the way hvwgd writes it, nothing decoded
  settle
  read -r t w f _ < <("$top/$dir/bench_write_ceiling" "$work" "$ref")
  if [ -z "${T[write-ceiling]:-}" ] || (( $(echo "$t < ${T[write-ceiling]}" | bc) )); then WC_W=$w; WC_F=$f; fi
  best write-ceiling "$t"

  # the parallel decoder alone, in memory (no SHA-512, no writes), 2 threads, beside the
  # single-thread ISA-L ceiling of each file
  for f in plain:"$gz" pigzi:"$pgz" bgzf:"$bgz"; do
    settle
    read -r t _ _ < <("$top/$dir/bench_pz_ceiling" "${f#*:}" 2 2>/dev/null); best "pz-${f%%:*}-2t" "$t"
    read -r t _ _ < <("$ceiling" "${f#*:}"); best "isal-${f%%:*}" "$t"
  done
  hv_import hvwgd-plain-2t "$gz" 2
  # the plain file from blocks found by trial: the decoder alone (1 and 2 threads), an import
  for t in 1 2; do
    settle
    read -r s _ _ _ _ m < <("$top/$dir/bench_pz_ceiling" "$gz" "$t" spec 2>/dev/null); best "pz-spec-${t}t" "$s"; MARK[$t]=$m
  done
  hv_import hvwgd-plain-2t-spec "$gz" 2s
  for t in 1 2; do
    hv_import "hvwgd-pigzi-${t}t" "$pgz" "$t"
    hv_import "hvwgd-bgzf-${t}t" "$bgz" "$t"
  done
done
rss=${RSS[hvwgd]}

mbps() { echo "scale=0; $raw_size / 1048576 / $1" | bc; }
printf '\n%-22s %9s %10s %14s\n' "tool" "seconds" "MiB/s" "allocated"
for k in systemd-import pigz-cp igzip-cp hvwgd isal-ceiling isal-ceiling-zero isal-ceiling-busy write-ceiling; do
  printf '%-22s %9.2f %10s %14s\n' "$k" "${T[$k]}" "$(mbps "${T[$k]}")" "${A[$k]:+$(echo "scale=1; ${A[$k]} / 1048576" | bc) MiB}"
done
echo
echo "hvwgd peak RSS (VmHWM): $((rss / 1024)) MiB"
echo "hvwgd allocated vs reference raw: ${A[hvwgd]} vs $ref_alloc bytes ($(echo "scale=2; 100 * ${A[hvwgd]} / $ref_alloc" | bc)%; the reference keeps some zero blocks allocated)"
echo "hvwgd allocated vs cp --sparse=always: ${A[hvwgd]} vs ${A[pigz-cp]} bytes ($(echo "scale=2; 100 * ${A[hvwgd]} / ${A[pigz-cp]}" | bc)%)"
echo "ratio systemd-import / hvwgd:  $(echo "scale=2; ${T[systemd-import]} / ${T[hvwgd]}" | bc)x (target >= 4)"
echo "ratio pigz|cp / hvwgd:         $(echo "scale=2; ${T[pigz-cp]} / ${T[hvwgd]}" | bc)x"
echo "ratio igzip|cp / hvwgd:        $(echo "scale=2; ${T[igzip-cp]} / ${T[hvwgd]}" | bc)x"
echo "ratio hvwgd / ISA-L ceiling:   $(echo "scale=2; ${T[hvwgd]} / ${T[isal-ceiling]}" | bc)x (target <= 1.10)"
echo "ratio hvwgd / ceiling, other core hashing: $(echo "scale=2; ${T[hvwgd]} / ${T[isal-ceiling-busy]}" | bc)x"
echo "ratio hvwgd / ceiling+zero:    $(echo "scale=2; ${T[hvwgd]} / ${T[isal-ceiling-zero]}" | bc)x"
echo "hvwgd's streaming phase (read+SHA-512 | inflate | write, its log): ${STREAM[hvwgd]} s = $(echo "scale=2; ${STREAM[hvwgd]} / ${T[isal-ceiling]}" | bc)x the ISA-L ceiling; then its fsync: ${FSYNC[hvwgd]} s"
echo "durable write of the image's data alone (write-ceiling: O_DIRECT 1 MiB pwrites + fsync, nothing decoded): ${T[write-ceiling]} s = writes $WC_W s + fsync $WC_F s"
echo "  (on a VM disk with a write-back cache the fsync is the host writing back what it cached; it runs after the last"
echo "   write whatever the decoding speed, so a durable import's floor is about the ISA-L ceiling plus such an fsync)"
echo "SHA-512 of the download alone (openssl dgst, cached): ${T[sha512]} s, $(echo "scale=0; $gz_size / 1048576 / ${T[sha512]}" | bc) MiB/s of gzip"
echo "hvwgd start-up to ready (bus name taken; default config, qemu:///system tried): ${T[startup]} s (aim <= 0.2)"
echo
echo "== parallel decoding (InflateThreads; plain: $(numfmt --to=iec $gz_size), pigz --independent: $(numfmt --to=iec $(stat -c %s "$pgz")), bgzip: $(numfmt --to=iec $(stat -c %s "$bgz")))"
printf '%-22s %9s %10s %12s %16s %9s %9s %9s\n' "import" "seconds" "MiB/s" "vs 1 thread" "vs ISA-L ceiling" "peak RSS" "streamed" "fsync"
for k in hvwgd hvwgd-plain-2t hvwgd-plain-2t-spec hvwgd-pigzi-1t hvwgd-pigzi-2t hvwgd-bgzf-1t hvwgd-bgzf-2t; do
  one=${k/-2t/-1t}; [ "${k#hvwgd-plain}" != "$k" ] && one=hvwgd
  printf '%-22s %9.2f %10s %11sx %15sx %6s MiB %9s %9s\n' "$k" "${T[$k]}" "$(mbps "${T[$k]}")" \
    "$(echo "scale=2; ${T[$one]} / ${T[$k]}" | bc)" "$(echo "scale=2; ${T[$k]} / ${T[isal-ceiling]}" | bc)" "$((${RSS[$k]} / 1024))" \
    "${STREAM[$k]}" "${FSYNC[$k]}"
done
echo "(vs ISA-L ceiling: hvwgd's time over the single-thread in-memory inflate of the plain file; below 1 is past it;"
echo " streamed/fsync: the daemon's own log of the last run — the fsync is the disk's write-back and varies most)"
echo "where the streaming phase's time went (the daemon's log of the last run: CPU per stage, wall time in pwrite):"
for k in hvwgd hvwgd-plain-2t hvwgd-plain-2t-spec hvwgd-pigzi-1t hvwgd-pigzi-2t hvwgd-bgzf-1t hvwgd-bgzf-2t; do
  printf '  %-20s %s\n' "$k" "${CPU[$k]}"
done
echo
echo "== the decoder alone, in memory (bench_pz_ceiling: no SHA-512, no writes), 2 threads"
for f in plain pigzi bgzf; do
  printf '%-8s pinflate 2 threads %6.2f s   ISA-L 1 thread %6.2f s   speed-up %sx\n' "$f" "${T[pz-$f-2t]}" "${T[isal-$f]}" \
    "$(echo "scale=2; ${T[isal-$f]} / ${T[pz-$f-2t]}" | bc)"
done
echo
echo "== single-member speculative decoding (InflateSpeculate=yes), the plain gzip -6 file, the decoder alone"
printf 'pinflate 1 thread %6.2f s   2 threads %6.2f s   speed-up %sx   output the speculative decoder made: %s%%\n' \
  "${T[pz-spec-1t]}" "${T[pz-spec-2t]}" "$(echo "scale=2; ${T[pz-spec-1t]} / ${T[pz-spec-2t]}" | bc)" \
  "$(echo "scale=1; 100 * ${MARK[2]} / $raw_size" | bc)"
echo "(InflateSpeculate=auto speculates only with 4 threads or more: see the README for why)"

