"""Machines through the private bus against libvirt's test:///default driver: create (start=false
and true), list with the right sizes, destroy with files gone, rollback when libvirt refuses the
name, cancel mid-create, bad input with its errors and nothing left behind, start-up
reconciliation of machine directories without a domain."""
import json, os, re, shutil, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

E = "org.hepix.hvwg1.Error."


def main():
    with h.Env(conf_extra={"Machine": {"ScratchPerCoreGiB": "1", "MemoryPerCoreMiB": "256"}}) as env:
        img = h.make_mbr_image(os.path.join(env.src, "m.img"), mib=64)
        rc, res, err = env.fetch("file://" + h.gzip_file(img, img + ".gz"), "m")
        h.check(rc == 0, "an image to start from")

        def create(name, *opts, cores=2):
            r = env.ctl("--json", "create", "m", name, f"--cores={cores}", *opts)
            return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr

        def machines():
            return {x[0]: x for x in env.call("ListMachines")[0]}

        rc, res, err = create("vm-off", "--no-start")
        h.check(rc == 0 and res["result"] == "done", "CreateMachine start=false: done " + err.strip())
        d = os.path.join(env.machines, "vm-off")
        name, uuid, cores, mem, scratch, image, state = machines()["vm-off"]
        h.check((cores, mem, scratch, image, state) == (2, 512, 2 << 30, "m", "shut-off"),
                f"ListMachines: 2 cores, 2×256 MiB, 2×1 GiB scratch, image m, shut-off ({cores}, {mem}, {scratch}, {image}, {state})")
        h.check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid) is not None, "a UUID")
        h.check(subprocess.run(["cmp", img, os.path.join(d, "root.raw")]).returncode == 0, "root disk is a copy of the image")
        h.check(h.allocated(os.path.join(d, "root.raw")) <= h.allocated(os.path.join(env.images, "m.raw")) + (64 << 10),
                "root disk is sparse")
        r = subprocess.run(["e2fsck", "-fn", os.path.join(d, "scratch.img")], capture_output=True, text=True)
        dump = subprocess.run(["dumpe2fs", "-h", os.path.join(d, "scratch.img")], capture_output=True, text=True).stdout
        meta = open(os.path.join(d, "machine.meta")).read()
        h.check(r.returncode == 0 and "Filesystem volume name:   scratch" in dump, "scratch disk: clean ext4 labelled scratch")
        su = re.search(r"Filesystem UUID:\s+(\S+)", dump).group(1)
        h.check(f"scratch_uuid={su}" in meta and f"uuid={uuid}" in meta, "machine.meta records the domain and scratch UUIDs")

        rc, res, err = create("vm-on", "--scratch=0", "--memory=300M", cores=1)
        h.check(rc == 0, "CreateMachine start=true, no scratch disk: done " + err.strip())
        x = machines()["vm-on"]
        h.check(tuple(x[2:]) == (1, 300, 0, "m", "running"), f"ListMachines: running, memory 300 MiB, no scratch: {x}")
        h.check(not os.path.exists(os.path.join(env.machines, "vm-on", "scratch.img")), "scratch_gib=0: no scratch disk")

        # bad input: specific errors, nothing left behind
        before = sorted(os.listdir(env.machines))
        for cores in (0, 9999):  # straight to the daemon: hvwgctl refuses 0 itself
            r = env.call("CreateMachine", "ssua{sv}", "m", "vm-x", str(cores), "0", check=False)
            h.check("cores must be between 1" in r.stderr, f"cores={cores} refused: {r.stderr.strip()}")
        for args, cores, words in ((["vm-x", "--hypervisor=vmware"], 1, "unknown hypervisor"),
                                   (["vm-x", "--scratch-fs=xfs"], 1, "unknown scratch_fs"),
                                   (["vm-off"], 1, "already exists")):
            r = env.ctl("create", "m", *args, f"--cores={cores}")
            h.check(r.returncode in (1, 2) and words in r.stderr, f"create {args} cores={cores}: {r.stderr.strip()}")
        r = env.call("CreateMachine", "ssua{sv}", "m", "vm-x", "1", "1", "memory_mib", "t", "0", check=False)
        h.check("memory_mib must be" in r.stderr, "memory 0 refused")
        r = env.ctl("create", "nothere", "vm-x", "--cores=1")
        h.check(r.returncode == 1 and "no image named nothere" in r.stderr, "image that does not exist: NoSuchImage")
        # libvirt already has a domain called "test" (the test driver's own): refused and rolled back
        rc, res, err = create("test", "--no-start", cores=1)
        h.check(rc == 1 and res["error_name"] == E + "MachineExists" and "libvirt already has" in res["error_message"],
                "a name libvirt already has: MachineExists " + (res or {}).get("error_message", err))
        h.check(sorted(os.listdir(env.machines)) == before, "nothing left behind by refused creates")

        # cancel mid-create: rolled back. A 1 GiB image of real data keeps the copy busy long enough.
        big = h.make_data_image(os.path.join(env.src, "big.img"), 1024, 960)
        rc, res, err = env.fetch("file://" + big, "big", raw=True)
        h.check(rc == 0, "a 1 GiB image of data " + err.strip())
        r = env.ctl("--no-wait", "--json", "create", "big", "vm-cancel", "--cores=2", "--no-start")
        job = json.loads(r.stdout)
        env.call("CancelJob", "u", job["id"], check=False)
        for _ in range(100):
            if env.call("ListJobs") == [[]]:
                break
            time.sleep(0.05)
        h.check(f"job {job['id']} (create vm-cancel) canceled" in env.log(), "the create job ended canceled")
        h.check("vm-cancel" not in machines() and sorted(os.listdir(env.machines)) == before,
                "cancel mid-create leaves nothing behind")
        env.ctl("rm", "big")

        # destroy
        r = env.ctl("destroy", "vm-on")
        h.check(r.returncode == 0 and "vm-on" not in machines() and not os.path.exists(os.path.join(env.machines, "vm-on")),
                "DestroyMachine: gone, files gone")
        r = env.call("DestroyMachine", "sa{sv}", "vm-off", "1", "bogus", "b", "true", check=False)
        h.check("unknown option" in r.stderr, "DestroyMachine with an unknown option refused")
        r = env.ctl("destroy", "nothere")
        h.check(r.returncode == 1 and "no machine named" in r.stderr, "DestroyMachine of an unknown machine: NoSuchMachine")
        r = env.ctl("rm", "m")
        h.check(r.returncode == 1 and "used by 1 machine: vm-off" in r.stderr, "RemoveImage while a machine uses it: ImageBusy, naming it")

        # restart: the test driver forgets its domains; the directory stays and is listed as undefined.
        # Also: an empty machine directory (a crash between mkdir and the .creating marker) is
        # removed; one holding only kept disks is left alone.
        os.makedirs(os.path.join(env.machines, "ghost"))
        os.makedirs(os.path.join(env.machines, "kept"))
        open(os.path.join(env.machines, "kept", "root.raw"), "w").write("disk")
        # killed while machine.meta was being written: its temp file must not keep the directory
        # (test_crash found one that stayed, unlisted, without its marker)
        half = os.path.join(env.machines, "half")
        os.makedirs(half)
        for f in (".creating", "root.raw", "scratch.img", "machine.meta.tmp.4242", ".odirect-probe"):
            open(os.path.join(half, f), "w").write("x")
        # a half-made machine with a file that is not ours keeps its marker (and the file)
        odd = os.path.join(env.machines, "odd")
        os.makedirs(odd)
        for f in (".creating", "root.raw", "notes.txt"):
            open(os.path.join(odd, f), "w").write("x")
        env.stop_daemon()
        env.start_daemon()
        for _ in range(50):
            if "vm-off" in machines():
                break
            time.sleep(0.1)
        x = machines().get("vm-off")
        h.check(x is not None and x[6] == "undefined" and x[1] == uuid and x[2] == 2, f"after restart: vm-off listed as undefined {x}")
        h.check("has no libvirt domain" in env.log(), "start-up reconciliation logs it")
        h.check(not os.path.exists(os.path.join(env.machines, "ghost")), "an empty machine directory is removed at start-up")
        h.check(open(os.path.join(env.machines, "kept", "root.raw")).read() == "disk", "kept disks are left alone")
        h.check(not os.path.exists(half), "a half-made machine with a leftover machine.meta.tmp.PID is removed")
        h.check(sorted(os.listdir(odd)) == [".creating", "notes.txt"] and "not hvwgd's" in env.log(),
                f"a half-made machine holding a foreign file: ours removed, marker and file kept, logged ({sorted(os.listdir(odd))})")
        shutil.rmtree(odd)
        r = env.ctl("destroy", "vm-off")
        h.check(r.returncode == 0 and not os.path.exists(d), "DestroyMachine removes an undefined machine's directory")
        r = env.ctl("rm", "m")
        h.check(r.returncode == 0, "the image is free again")


if __name__ == "__main__":
    main()
