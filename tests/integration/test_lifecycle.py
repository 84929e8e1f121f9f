"""A machine's whole life on test:///default, through the bus: GetMachine, Start/Stop/Reboot,
OpenConsole, GetImage; owners (root and two different hvwg members); capacity refusals and
the Committed* properties; the leftovers of destroy --keep-disks listed, refused as a name and
cleared; transient machines torn down when they stop (MachineRemoved, the kept console log,
KeepConsoleLogs), also across a restart; DestroyMachine racing a stop, many times; the audit
trail."""
import json, os, re, subprocess, sys, threading, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

E = "org.hepix.hvwg1.Error."


class Signals:
    """busctl monitor on the private bus: the Manager's signals as (member, data) tuples."""

    def __init__(self, env):
        self.p = subprocess.Popen(["busctl", "--address=" + env.address, "monitor", "--json=short", h.BUS],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.items = []
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.5)

    def _read(self):
        for line in self.p.stdout:
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("type") == "signal":
                self.items.append((m.get("member"), m.get("payload", {}).get("data")))

    def wait(self, member, pred=lambda d: True, timeout=20):
        return h.wait_for(lambda: next((d for mm, d in list(self.items) if mm == member and pred(d)), None), timeout)

    def close(self):
        h.stop_process(self.p)


def details(env, name, user=None):
    r = env.busctl("--json=short", "call", h.BUS, h.OBJ, h.MGR, "GetMachine", "s", name, user=user, check=False)
    if r.returncode != 0:
        return r.stderr.strip()
    return {k: v["data"] for k, v in json.loads(r.stdout)["data"][0].items()}


def main():
    a, b = h.hvwg_member(), h.second_member()
    with h.Env(conf_extra={"Machine": {"ScratchPerCoreGiB": "1", "MemoryPerCoreMiB": "256", "KeepConsoleLogs": "2"}},
               start=False) as env:
        # libvirt's lifecycle events come on its own thread; HVWGD_FAULT=late-events holds each
        # back 0.3 s, so a reply that ran ahead of the state it reports is seen
        env.start_daemon(wrapper=("env", "HVWGD_FAULT=late-events"))
        sig = Signals(env)
        img = h.make_mbr_image(os.path.join(env.src, "m.img"), mib=64)
        rc, res, err = env.fetch("file://" + h.gzip_file(img, img + ".gz"), "m")
        h.check(rc == 0, "an image " + err.strip())

        def create(name, *opts, user=None, cores=1):
            r = env.ctl("--json", "create", "m", name, f"--cores={cores}", *opts, user=user)
            return r.returncode, r.stdout, r.stderr

        def state(name):
            return {x[0]: x[6] for x in env.call("ListMachines")[0]}.get(name)

        # ---- GetMachine, GetImage ----
        rc, out, err = create("vm-a", "--no-start", cores=2)
        h.check(rc == 0, "create vm-a " + err.strip())
        d = details(env, "vm-a")
        root = os.path.join(env.machines, "vm-a", "root.raw")
        img_info = {k: v["data"] for k, v in json.loads(env.busctl("--json=short", "call", h.BUS, h.OBJ, h.MGR, "GetImage", "s", "m")
                                                        .stdout)["data"][0].items()}
        h.check(img_info["sha512"] == h.sha512_file(os.path.join(env.images, "m.raw")) or len(img_info["sha512"]) == 128,
                "GetImage: sha512")
        h.check(img_info["machines"] == ["vm-a"] and img_info["size"] == 64 << 20, f"GetImage: the machines using it {img_info['machines']}")
        h.check(d["name"] == "vm-a" and d["cores"] == 2 and d["memory_mib"] == 512 and d["state"] == "shut-off" and
                d["owner_uid"] == 0 and d["transient"] is False and d["hypervisor"] == "qemu" and d["image"] == "m" and
                d["image_sha512"] == img_info["sha512"] and d["state_reason"] == "created",
                f"GetMachine: fields {{k: d[k] for k in ('state', 'state_reason', 'owner_uid', 'transient', 'hypervisor')}}")
        disks = {x[0]: x for x in d["disks"]}
        h.check(disks["root"][1] == root and disks["root"][2] == h.allocated(root) and
                disks["scratch"][1] == os.path.join(env.machines, "vm-a", "scratch.img") and disks["scratch"][2] > 0,
                f"GetMachine: disks with paths and allocated bytes {d['disks']}")
        h.check(d["console_log"] == os.path.join(env.machines, "vm-a", "console.log") and d["created_usec"] > 0 and
                d["state_changed_usec"] >= d["created_usec"], "GetMachine: console log path, times")
        r = env.call("GetMachine", "s", "nothere", check=False)
        h.check("no machine named nothere" in r.stderr, "GetMachine of an unknown machine: NoSuchMachine")
        h.check(isinstance(details(env, "vm-a", user=h.second_member()[:2] + ([],)), dict), "GetMachine is open to every user")

        # ---- start, reboot, stop ----
        env.call("StartMachine", "s", "vm-a")
        h.check(state("vm-a") == "running" and details(env, "vm-a")["state_reason"] == "booted", "StartMachine: running (booted)")
        env.call("StartMachine", "s", "vm-a")
        h.check(state("vm-a") == "running", "StartMachine of a running machine: nothing to do, no error")
        env.call("RebootMachine", "s", "vm-a")
        h.check(state("vm-a") == "running", "RebootMachine")
        env.call("StopMachine", "sa{sv}", "vm-a", "1", "timeout_sec", "t", "5")
        h.check(h.wait_for(lambda: state("vm-a") == "shut-off", 10) and details(env, "vm-a")["state_reason"] == "poweroff",
                "StopMachine: ACPI shutdown, shut-off (poweroff)")
        env.call("StopMachine", "sa{sv}", "vm-a", "0")
        h.check(state("vm-a") == "shut-off", "StopMachine of a stopped machine: nothing to do")
        r = env.call("RebootMachine", "s", "vm-a", check=False)
        h.check("is not running" in r.stderr, "RebootMachine of a stopped machine: refused " + r.stderr.strip())
        env.call("StartMachine", "s", "vm-a")
        env.call("StopMachine", "sa{sv}", "vm-a", "1", "force", "b", "true")
        h.check(state("vm-a") == "shut-off" and details(env, "vm-a")["state_reason"] == "destroyed", "StopMachine force=true")
        for args, words in ((("1", "bogus", "b", "true"), "unknown option"), (("1", "timeout_sec", "t", "999999"), "at most 86400"),
                            (("1", "force", "s", "yes"), "must have type")):
            r = env.call("StopMachine", "sa{sv}", "vm-a", *args, check=False)
            h.check(r.returncode != 0 and words in r.stderr, f"StopMachine {args}: {r.stderr.strip()}")
        sig.wait("MachineStateChanged", lambda d: d == ["vm-a", "running"])
        h.check(sig.wait("MachineStateChanged", lambda d: d == ["vm-a", "running"]), "MachineStateChanged signals")

        # ---- owners ----
        rc, out, err = create("vm-own", "--no-start", user=a)
        h.check(rc == 0, "a member of hvwg creates vm-own " + err.strip())
        h.check(details(env, "vm-own")["owner_uid"] == a[0], "the machine records its creator")
        for cmd in ("start", "stop", "reboot", "console", "destroy"):  # busctl shows no error messages: hvwgctl does
            r = env.ctl("--verbose", cmd, "vm-own", user=b)
            h.check(r.returncode == 4 and f"belongs to uid {a[0]}" in r.stderr and "AccessDenied" in r.stderr,
                    f"{cmd} by another member: refused, exit 4 ({r.stderr.strip()})")
        env.call("StartMachine", "s", "vm-own", user=a)
        h.check(state("vm-own") == "running", "its owner starts it")
        env.call("StopMachine", "sa{sv}", "vm-own", "1", "force", "b", "true")
        h.check(state("vm-own") == "shut-off", "root stops anyone's machine")
        # a job of one member cannot be canceled by another
        big = h.make_data_image(os.path.join(env.src, "big.img"), 512, 448)
        os.chmod(big, 0o644)
        r = env.ctl("--json", "--no-wait", "fetch", "file://" + big, "big", "--raw", user=a)
        job = json.loads(r.stdout)["id"]
        r = env.ctl("cancel", str(job), user=b)
        h.check(r.returncode == 4 and f"belongs to uid {a[0]}" in r.stderr, "CancelJob of another member's job: refused " + r.stderr.strip())
        env.call("CancelJob", "u", job, user=a, check=False)
        h.wait_for(lambda: env.call("ListJobs") == [[]], 30)

        # ---- audit ----
        log = env.log()
        h.check(re.search(rf"audit: uid={b[0]} pid=\d+ DestroyMachine\(\"vm-own\", \{{\}}\) → refused \(org.freedesktop.DBus.Error.AccessDenied\)", log),
                "audit: a refused DestroyMachine with the caller's uid and pid")
        h.check(re.search(r"audit: uid=0 pid=\d+ StopMachine\(\"vm-a\", \{\"force\"=true\}\) → ok", log), "audit: a StopMachine with its options")
        h.check(re.search(rf"audit: uid={a[0]} pid=\d+ CreateMachine\(\"m\", \"vm-own\", 1, .*\) → job \d+", log), "audit: CreateMachine → its job")

        # ---- leftovers of destroy --keep-disks ----
        env.call("DestroyMachine", "sa{sv}", "vm-own", "1", "keep_disks", "b", "true", user=a)
        h.check(state("vm-own") == "undefined" and os.path.exists(os.path.join(env.machines, "vm-own", "root.raw")),
                "destroy --keep-disks: listed as undefined, disks kept")
        rc, out, err = create("vm-own", "--no-start")
        h.check(rc == 1 and "DestroyMachine clears" in out + err, "its name is taken until the leftovers are cleared: " + (out + err).strip()[:160])
        r = env.call("StartMachine", "s", "vm-own", check=False)
        h.check("has no libvirt domain" in r.stderr, "StartMachine of leftovers: refused " + r.stderr.strip())
        env.call("DestroyMachine", "sa{sv}", "vm-own", "0", user=a)
        h.check(state("vm-own") is None and not os.path.exists(os.path.join(env.machines, "vm-own")), "DestroyMachine clears them")
        h.check(sig.wait("MachineRemoved", lambda d: d[0] == "vm-own" and d[1] == "destroyed"), "MachineRemoved(vm-own, destroyed)")

        # ---- OpenConsole ----
        r = env.call("OpenConsole", "s", "vm-a", check=False)
        h.check("no console log yet" in r.stderr, "OpenConsole before the machine wrote anything: " + r.stderr.strip())

        # ---- transient ----
        r = env.call("CreateMachine", "ssua{sv}", "m", "vm-t", "1", "2", "transient", "b", "true", "start", "b", "false", check=False)
        h.check("start=false cannot go with transient" in r.stderr, "transient with start=false: refused")
        kept = []
        for i in range(3):
            name = f"vm-t{i}"
            rc, out, err = create(name, "--transient")
            h.check(rc == 0 and state(name) == "running" and details(env, name)["transient"] is True, f"transient {name} running")
            with open(os.path.join(env.machines, name, "console.log"), "w") as f:
                f.write(f"guest output {i}\n")
            env.call("StopMachine", "sa{sv}", name, "0")  # test:///default: the guest powers off at once
            ev = sig.wait("MachineRemoved", lambda d: d[0] == name)
            h.check(ev and ev[1] == "poweroff" and ev[2].startswith(os.path.join(env.machines, ".logs", name + "-")),
                    f"MachineRemoved({name}, poweroff, {ev and ev[2]})")
            h.check(state(name) is None and not os.path.exists(os.path.join(env.machines, name)), f"{name} is gone, disks and all")
            h.check(open(ev[2]).read() == f"guest output {i}\n" and os.stat(ev[2]).st_mode & 0o777 == 0o600,
                    "the console log is kept, mode 0600")
            kept.append(ev[2])
            time.sleep(1.1)  # distinct mtimes
        logs = sorted(os.listdir(os.path.join(env.machines, ".logs")))
        h.check(len(logs) == 2 and os.path.basename(kept[0]) not in logs, f"KeepConsoleLogs=2: the oldest went {logs}")
        # a transient machine destroyed by its owner: reason destroyed (its disks cannot be kept)
        rc, out, err = create("vm-td", "--transient")
        r = env.call("DestroyMachine", "sa{sv}", "vm-td", "1", "keep_disks", "b", "true", check=False)
        h.check(r.returncode != 0 and "vm-td" in {x[0] for x in env.call("ListMachines")[0]}, "keep_disks on a transient machine: refused")
        env.call("DestroyMachine", "sa{sv}", "vm-td", "0")
        h.check(sig.wait("MachineRemoved", lambda d: d[0] == "vm-td" and d[1] == "destroyed"), "MachineRemoved(vm-td, destroyed)")
        # across a restart: test:///default forgets its domains, as a host that rebooted would
        rc, out, err = create("vm-tr", "--transient")
        env.stop_daemon()
        env.start_daemon()
        h.check(h.wait_for(lambda: state("vm-tr") is None and not os.path.exists(os.path.join(env.machines, "vm-tr")), 20),
                "a transient machine found without its domain at start-up is removed (host-shutdown)")
        h.check("transient machine vm-tr stopped (host-shutdown)" in env.log(), "logged as host-shutdown")
        sig.close()

    # ---- capacity ----
    ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
    ram = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) // 1024
    with h.Env(conf_extra={"Machine": {"ScratchPerCoreGiB": "1", "CpuOvercommit": "1", "MemoryPerCoreMiB": "64",
                                       "ReservedMemoryMiB": str(ram - 1000)}}) as env:
        img = h.make_mbr_image(os.path.join(env.src, "m.img"), mib=64)
        env.fetch("file://" + h.gzip_file(img, img + ".gz"), "m")
        h.check(env.prop("CapacityCores") == ncpu and env.prop("CapacityMemoryMiB") == 1000, "CapacityCores, CapacityMemoryMiB")
        r = env.ctl("create", "m", "c1", f"--cores={ncpu}", "--no-start")
        h.check(r.returncode == 0, f"a machine with all {ncpu} cores " + r.stderr.strip())
        h.check(env.prop("CommittedCores") == ncpu and env.prop("CommittedMemoryMiB") == 64 * ncpu and
                env.prop("CommittedScratchBytes") == ncpu << 30, "Committed* properties")
        r = env.ctl("create", "m", "c2", "--cores=1", "--no-start")
        h.check(r.returncode == 1 and "not enough CPU" in r.stderr and f"{ncpu} online CPUs × CpuOvercommit=1" in r.stderr,
                "past the cores: refused, naming what is short: " + r.stderr.strip())
        env.ctl("destroy", "c1")
        h.check(env.prop("CommittedCores") == 0, "destroy gives the cores back")
        r = env.ctl("create", "m", "c3", "--cores=1", "--memory=900M", "--no-start")
        h.check(r.returncode == 0, "900 MiB of 1000 " + r.stderr.strip())
        r = env.ctl("create", "m", "c4", "--cores=1", "--memory=200M", "--no-start")
        h.check(r.returncode == 1 and "not enough memory" in r.stderr and "ReservedMemoryMiB" in r.stderr,
                "past the memory: refused " + r.stderr.strip())
        r = env.call("CreateMachine", "ssua{sv}", "m", "c5", "1", "2", "scratch_gib", "t", str(1 << 20), "start", "b", "false",
                     check=False)
        r = env.ctl("--json", "create", "m", "c5", "--cores=1", "--scratch=60T", "--no-start")
        h.check(r.returncode == 1 and "not enough space for a scratch disk" in r.stdout, "scratch past the free space: NoSpace")

    # ---- DestroyMachine racing the guest's power-off, many times ----
    # The window (the guest powers off between hvwgd's "is it running?" and its forced stop) is
    # microseconds wide on test:///default: HVWGD_FAULT=poweroff-race makes every destroy hit it
    # (the domain stops right there), and a concurrent StopMachine races it for real.
    with h.Env(conf_extra={"Machine": {"ScratchPerCoreGiB": "1"}}, start=False) as env:
        env.start_daemon(wrapper=("env", "HVWGD_FAULT=poweroff-race"))
        img = h.make_mbr_image(os.path.join(env.src, "m.img"), mib=64)
        env.fetch("file://" + h.gzip_file(img, img + ".gz"), "m")
        bad = []
        for i in range(25):
            name = f"race{i}"
            r = env.ctl("create", "m", name, "--cores=1", "--scratch=0", *(["--transient"] if i % 2 else []))
            if r.returncode != 0:
                bad.append(f"{name}: create: {r.stderr.strip()}")
                continue
            stop = subprocess.Popen(["busctl", "--address=" + env.address, "call", h.BUS, h.OBJ, h.MGR, "StopMachine", "sa{sv}", name, "1",
                                     "force", "b", "true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            d = env.call("DestroyMachine", "sa{sv}", name, "0", check=False)
            stop.communicate()
            # a transient machine may be gone before DestroyMachine looks: NoSuchMachine is then the answer
            if d.returncode != 0 and not (i % 2 and "no machine named" in d.stderr):
                bad.append(f"{name}: DestroyMachine: {d.stderr.strip()}")
            if not h.wait_for(lambda: state_of(env, name) is None and not os.path.exists(os.path.join(env.machines, name)), 10):
                bad.append(f"{name}: still there ({state_of(env, name)})")
        h.check(not bad, f"DestroyMachine racing the guest's power-off, 25 times: always gone {bad}")


def state_of(env, name):
    return {x[0]: x[6] for x in env.call("ListMachines")[0]}.get(name)


if __name__ == "__main__":
    main()
