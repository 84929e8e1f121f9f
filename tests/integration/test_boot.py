"""The real thing: a tiny bootable guest (tests/boot/make-guest.sh: MBR + SYSLINUX + Debian cloud
kernel + busybox initramfs) is gzipped, fetched through hvwgd, and created as a machine with 2
cores and a 2 × 1 GiB scratch disk on a real libvirtd + QEMU that this test starts itself. The
guest reports on its serial console (MachineRoot/NAME/console.log) what it sees; we assert its
CPU count, memory, the disk labelled scratch, its size, and a write and read on it.

Hypervisor qemu (TCG): on these machines /dev/kvm exists but nested KVM cannot boot a Linux
guest, so `auto` is not trusted here."""
import json, os, re, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

def main():
    h.need(os.geteuid() == 0, "needs root to run libvirtd and QEMU")
    for tool in ("libvirtd", "virsh", "qemu-system-x86_64", "syslinux", "mcopy", "mkfs.fat", "cpio"):
        h.need(shutil.which(tool), f"{tool} is not installed (tools/deps.sh installs it)")
    h.need(any(k.endswith("-cloud-amd64") for k in os.listdir("/lib/modules")), "no linux-image-cloud-amd64 kernel (tools/deps.sh)")
    guest = h.guest_image()
    tmp = tempfile.mkdtemp(prefix="hvwg-boot-")
    libvirtd, uri, ok = h.start_libvirtd(tmp)
    try:
        h.check(ok, "a private libvirtd is up at " + uri + ("" if ok else ": " + open(os.path.join(tmp, "libvirtd.log")).read()[-800:]))
        with h.Env(conf_extra={"Machine": {"LibvirtURI": uri, "Hypervisor": "qemu", "ScratchPerCoreGiB": "1",
                                           "MemoryPerCoreMiB": "128"}}) as env:
            src = os.path.join(env.src, "guest.img")
            shutil.copy(guest, src)
            gz = h.gzip_file(src, src + ".gz")
            rc, res, err = env.fetch("file://" + gz, "guest", sha512=h.sha512_file(gz))
            h.check(rc == 0, "the guest image is fetched " + err.strip())
            # its one partition is FAT (syslinux, kernel, initramfs): named by the contents scan, not read
            ct = {k: v["data"] for k, v in env.call("InspectImageContents", "s", "guest")[0].items()}
            h.check(ct["scanned"] and ct["os_id"] == "" and
                    any(f[1] == "partition-not-read" and "(vfat)" in f[2] for f in ct["findings"]),
                    "the contents scan names the guest's FAT partition and does not read it")
            parts = env.call("InspectImage", "s", "guest")[2]
            h.check(len(parts) == 1 and parts[0][1] == 0x0e and parts[0][2] and parts[0][5] == "vfat", f"inspected: {parts}")
            for _ in range(100):
                if "connected to libvirt" in env.log():
                    break
                time.sleep(0.1)
            t0 = time.time()
            # its context: a prolog.sh (HEPiX) that prints a variable of context.sh and the instance-id of meta-data
            prolog = os.path.join(env.src, "prolog.sh")
            with open(prolog, "w") as f:
                f.write('echo "HVWG-PROLOG: mark=$HVWG_MARK"\necho "HVWG-PROLOG-META: $(grep ^instance-id meta-data)"\n')
            r = env.ctl("create", "guest", "vm1", "--cores=2", "--hypervisor=qemu", f"--context-file=prolog.sh={prolog}",
                        "--context-var=HVWG_MARK=it's $(not run) `nor this`", "--meta-data=role=boot-test")
            h.check(r.returncode == 0, "CreateMachine on the real libvirtd: " + (r.stderr.strip() or "done"))
            console = os.path.join(env.machines, "vm1", "console.log")
            state = None
            for _ in range(240):
                ms = {x[0]: x for x in env.call("ListMachines")[0]}
                state = ms["vm1"][6] if "vm1" in ms else None
                text = open(console, errors="replace").read() if os.path.exists(console) else ""
                if "HVWG-GUEST: powering off" in text and state == "shut-off":
                    break
                time.sleep(0.5)
            text = open(console, errors="replace").read() if os.path.exists(console) else ""
            print("---- guest console (HVWG lines) ----\n" + "\n".join(l for l in text.splitlines() if "HVWG" in l))
            h.check("HVWG-GUEST: booted" in text, f"the guest booted ({time.time() - t0:.0f} s)")
            h.check(state == "shut-off", f"the guest powered off and ListMachines says so ({state})")
            val = lambda k: (re.search(rf"^(?:HVWG-CTX-LOG: )?{k}: (.*)$", text, re.M) or [None, None])[1]
            h.check(val("HVWG-CPUS") == "2", "the guest sees 2 CPUs")
            mem = int(val("HVWG-MEM-KB") or 0)
            h.check(200000 < mem <= 262144, f"the guest sees about 256 MiB ({mem} KiB)")
            h.check((val("HVWG-SCRATCH-DEV") or "").startswith("/dev/vd"), f"findfs LABEL=scratch finds {val('HVWG-SCRATCH-DEV')}")
            h.check(val("HVWG-SCRATCH-BYTES") == str(2 << 30), f"the scratch disk is 2 × 1 GiB ({val('HVWG-SCRATCH-BYTES')})")
            h.check(val("HVWG-SCRATCH-RW") == "ok", "the guest wrote and read a file on its scratch disk")
            uuid = {x[0]: x for x in env.call("ListMachines")[0]}["vm1"][1]
            h.check(re.search(r"^HVWG-CTX-LOG: hvwg-context: context from /dev/sr0 in /run/hvwg-context", text, re.M) is not None,
                    "contrib's hvwg-context finds the context disk by its label (the IDE CD-ROM, /dev/sr0)")
            h.check((val("HVWG-CONTEXT-FILES") or "").split() == ["context.sh", "meta-data", "prolog.sh", "user-data"] and
                    val("HVWG-CONTEXT-MODE") == "700" and val("HVWG-CONTEXT-MOUNTS") == "0",
                    f"the context disk holds {val('HVWG-CONTEXT-FILES')}; kept in a 0700 directory, the disk unmounted again")
            h.check(val("HVWG-PROLOG") == "mark=it's $(not run) `nor this`", f"prolog.sh ran with context.sh's value, inert: {val('HVWG-PROLOG')}")
            h.check(val("HVWG-PROLOG-META") == f'instance-id: "{uuid}"', f"meta-data's instance-id is the machine's UUID: {val('HVWG-PROLOG-META')}")
            r = subprocess.run(["e2fsck", "-fn", os.path.join(env.machines, "vm1", "scratch.img")], capture_output=True, text=True)
            h.check(r.returncode == 0, "the scratch disk is clean after the guest used it")
            r = env.ctl("destroy", "vm1")
            h.check(r.returncode == 0 and not os.path.exists(os.path.join(env.machines, "vm1")), "DestroyMachine")
            r = subprocess.run(["virsh", "-c", uri, "list", "--all", "--name"], capture_output=True, text=True)
            h.check("vm1" not in r.stdout.split(), "libvirt no longer knows vm1")

            # a batch job's VM: transient, followed with console -f, gone by itself when the guest powers off
            watch = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "--json", "watch"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
            time.sleep(0.5)
            t0 = time.time()
            # (a context, even a trivial one: the guest's context service then need not wait for one)
            r = env.ctl("create", "guest", "vm2", "--cores=1", "--hypervisor=qemu", "--transient", "--context-var=A=1")
            h.check(r.returncode == 0, "a transient machine on the real libvirtd: " + (r.stderr.strip() or "started"))
            follow = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "console", "-f", "vm2"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            try:
                out, err = follow.communicate(timeout=180)
            except subprocess.TimeoutExpired:
                follow.kill()
                out, err = follow.communicate()
            h.check(follow.returncode == 0 and "HVWG-GUEST: booted" in out and "HVWG-GUEST: powering off" in out,
                    f"console -f follows the guest until it stops ({time.time() - t0:.0f} s): {err.strip()}")
            gone = h.wait_for(lambda: "vm2" not in {x[0] for x in env.call("ListMachines")[0]} and
                              not os.path.exists(os.path.join(env.machines, "vm2")), 30)
            h.check(gone, "the transient machine removed itself, disks and all")
            time.sleep(0.5)
            watch.send_signal(signal.SIGINT)
            wout, _ = watch.communicate(timeout=10)
            ev = [e for e in map(json.loads, wout.splitlines()) if e.get("event") == "machine_removed" and e["name"] == "vm2"]
            h.check(len(ev) == 1 and ev[0]["reason"] == "poweroff", f"MachineRemoved(vm2, poweroff): {ev}")
            kept = ev[0]["console_log"] if ev else ""
            text = open(kept, errors="replace").read() if kept and os.path.exists(kept) else ""
            h.check(kept.startswith(os.path.join(env.machines, ".logs", "vm2-")) and "HVWG-GUEST: powering off" in text,
                    f"the kept console log {kept} holds the guest's output")
            r = subprocess.run(["virsh", "-c", uri, "list", "--all", "--name"], capture_output=True, text=True)
            h.check("vm2" not in r.stdout.split(), "libvirt no longer knows vm2")

            # DestroyMachine at the moment the guest powers off by itself (test_lifecycle repeats
            # the race many times on test:///default; this is the real QEMU once)
            r = env.ctl("create", "guest", "vm3", "--cores=1", "--hypervisor=qemu", "--context-var=A=1")
            log3 = os.path.join(env.machines, "vm3", "console.log")
            seen = h.wait_for(lambda: os.path.exists(log3) and "HVWG-GUEST: powering off" in open(log3, errors="replace").read(), 120, 0.01)
            r = env.ctl("destroy", "vm3")
            h.check(seen and r.returncode == 0 and "vm3" not in {x[0] for x in env.call("ListMachines")[0]} and
                    not os.path.exists(os.path.join(env.machines, "vm3")),
                    "DestroyMachine as the guest powers off: the machine is gone " + r.stderr.strip())
    finally:
        h.stop_process(libvirtd)
        if os.environ.get("HVWG_KEEP_TMP"):
            print("kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
