#!/usr/bin/env python3
"""hvwg-run overhead benchmark (not a test): `hvwg-run -- true` on the boot test's guest (QEMU,
TCG; create → boot → command → power-off → removal, split by phase from hvwg-run --verbose),
next to the same guest by hand: copy its disk, format a scratch disk, write a context ISO
(genisoimage) with the same kind of prolog, `virsh create`, wait for its power-off, `virsh
destroy` if it is still there. Alternating, in one run; prints each side's best and median
and the ratio. usage: bench/run.py [--runs N]"""
import os, re, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import harness as h, top  # noqa: E402
from test_run import RUN  # noqa: E402

XML = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/><apic/></features>
<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
<devices>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{dir}/root.raw'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{dir}/scratch.img'/><target dev='vdb' bus='virtio'/></disk>
<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='{dir}/context.iso'/><target dev='hdc' bus='ide'/><readonly/></disk>
<serial type='file'><source path='{dir}/console.log'/><target port='0'/></serial>
</devices></domain>"""


def by_hand(uri, guest, work, i):
    d = os.path.join(work, f"hand{i}")
    os.makedirs(d)
    t0 = time.time()
    subprocess.run(["cp", "--sparse=always", guest, os.path.join(d, "root.raw")], check=True)
    scratch = os.path.join(d, "scratch.img")
    with open(scratch, "wb") as f:
        f.truncate(1 << 30)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "scratch", scratch], check=True)
    ctx = os.path.join(d, "ctx")
    os.makedirs(ctx)
    open(os.path.join(ctx, "prolog.sh"), "w").write("#!/bin/sh\ntrue\necho HVWG-HAND-DONE\npoweroff -f\n")
    open(os.path.join(ctx, "context.sh"), "w").write("")
    subprocess.run(["genisoimage", "-quiet", "-V", "cidata", "-r", "-J", "-o", os.path.join(d, "context.iso"), ctx], check=True)
    xml = os.path.join(d, "dom.xml")
    open(xml, "w").write(XML.format(name=f"hand{i}", dir=d))
    subprocess.run(["virsh", "-q", "-c", uri, "create", xml], check=True, capture_output=True)
    t1 = time.time()
    while subprocess.run(["virsh", "-q", "-c", uri, "domstate", f"hand{i}"], capture_output=True).returncode == 0 and time.time() - t1 < 120:
        time.sleep(0.05)
    subprocess.run(["virsh", "-q", "-c", uri, "destroy", f"hand{i}"], capture_output=True)
    t2 = time.time()
    shutil.rmtree(d)
    return t2 - t0, t1 - t0


def main():
    runs = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--runs" else 3
    guest = h.guest_image()
    tmp = tempfile.mkdtemp(prefix="hvwg-bench-run-")
    libvirtd, uri, ok = h.start_libvirtd(tmp)
    if not ok:
        sys.exit("libvirtd did not start")
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    try:
        with h.Env(conf_extra={"Machine": {"LibvirtURI": uri, "Hypervisor": "qemu", "ScratchPerCoreGiB": "1",
                                           "MemoryPerCoreMiB": "128"}}) as env:
            src = os.path.join(env.src, "guest.img")
            shutil.copy(guest, src)
            env.fetch("file://" + src, "guest", raw=True)
            ours, hand, phases = [], [], []
            for i in range(runs):
                t0 = time.time()
                r = subprocess.run([RUN, "--bus-address=" + env.address, "--image=guest", "--cores=1", "--verbose", "--", "true"],
                                   capture_output=True, text=True)
                ours.append(time.time() - t0)
                m = re.search(r"timing: (.*)", r.stderr)
                phases.append(m.group(1) if m else f"(exit {r.returncode})")
                total, to_start = by_hand(uri, guest, tmp, i)
                hand.append(total)
            print(f"hvwg-run overhead, {runs} runs alternating; {os.cpu_count()} CPUs: {cpu}; QEMU TCG, the boot test's guest")
            print(f"  hvwg-run -- true (create, boot, command, power-off, removal): best {min(ours):.2f} s, median {statistics.median(ours):.2f} s")
            for p in phases:
                print("    " + p)
            print(f"  by hand (cp, mke2fs, genisoimage, virsh create, power-off, virsh destroy): best {min(hand):.2f} s, "
                  f"median {statistics.median(hand):.2f} s")
            print(f"  hvwg-run / by hand: {statistics.median(ours) / statistics.median(hand):.2f}× (medians)")
    finally:
        h.stop_process(libvirtd)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
