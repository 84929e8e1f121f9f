"""The bus surface: properties, introspection against dbus/org.hepix.hvwg1.xml, access control
(policy and the daemon's own check), argument validation, clean stop on SIGTERM."""
import os, signal, subprocess, sys, time
import xml.etree.ElementTree as ET
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

NOBODY = (65534, 65534, [])


def iface_sigs(root, name):
    for i in root.iter("interface"):
        if i.get("name") == name:
            out = {}
            for m in i.iter("method"):
                ins = "".join(a.get("type") for a in m.iter("arg") if a.get("direction", "in") == "in")
                outs = "".join(a.get("type") for a in m.iter("arg") if a.get("direction") == "out")
                out["method " + m.get("name")] = (ins, outs)
            for s in i.iter("signal"):
                out["signal " + s.get("name")] = "".join(a.get("type") for a in s.iter("arg"))
            for p in i.iter("property"):
                out["property " + p.get("name")] = p.get("type")
            return out
    return None


def main():
    member = h.hvwg_member()  # before the daemon starts: it looks the group up once
    with h.Env() as env:
        h.check(env.prop("Version") != "", "Version readable")
        h.check(env.prop("ImageRoot") == env.images, "ImageRoot is the configured store")
        h.check(env.prop("MachineRoot") == env.machines, "MachineRoot is the configured root")
        h.check(env.prop("LibvirtURI") == "test:///default", "LibvirtURI from config")
        h.check(env.prop("Hypervisor") == "qemu", "Hypervisor from config")
        h.check(env.prop("ScratchPerCoreGiB") == 20 and env.prop("MemoryPerCoreMiB") == 2048, "per-core defaults")
        h.check(env.prop("MaxImageSize") == 64 << 30, "MaxImageSize default 64G")
        h.check(env.prop("ActiveJobs") == 0, "no jobs at start")

        # introspection == the XML file == the contract
        live = ET.fromstring(env.busctl("introspect", "--xml-interface", h.BUS, h.OBJ).stdout)
        spec = ET.parse(os.path.join(h.SRC, "dbus/org.hepix.hvwg1.xml")).getroot()
        h.check(iface_sigs(live, h.MGR) == iface_sigs(spec, h.MGR), "Manager introspection matches dbus/org.hepix.hvwg1.xml")
        # a job object's interface, too: a download trickling at 2 KB/s stays long enough to look at
        with open(os.path.join(env.src, "slow.gz"), "wb") as f:
            f.write(os.urandom(1 << 20))
        srv = h.HttpServer(env.src)
        try:
            r = env.call("FetchImage", "ssa{sv}", f"{srv.url}/slow/slow.gz?bps=2000", "slowjob", "0")
            job = next((x for x in r if isinstance(x, str)), str(r))
            h.check(job.startswith("/org/hepix/hvwg1/job/"), "FetchImage returns a job path: " + job)
            r = env.busctl("introspect", "--xml-interface", h.BUS, job, check=False)
            h.check(r.returncode == 0, "the job object can be introspected: " + r.stderr.strip())
            spec_job = iface_sigs(spec, "org.hepix.hvwg1.Job")
            live_job = iface_sigs(ET.fromstring(r.stdout), "org.hepix.hvwg1.Job") if r.returncode == 0 else None
            h.check(spec_job is not None and "method Cancel" in spec_job, "Job interface in the XML")
            h.check(live_job == spec_job, f"Job introspection matches the XML ({live_job} vs {spec_job})")
            env.busctl("call", h.BUS, job, "org.hepix.hvwg1.Job", "Cancel")
            h.check(h.wait_for(lambda: env.prop("ActiveJobs") == 0), "the job ends once canceled")
        finally:
            srv.close()

        with open(os.path.join(env.src, "x.gz"), "wb") as f:   # a source a member may fetch (and fail on)
            f.write(b"not gzip")

        # reading is open to everyone
        r = env.busctl("get-property", h.BUS, h.OBJ, h.MGR, "Version", user=NOBODY, check=False)
        h.check(r.returncode == 0, "nobody may read properties")
        for m in ("ListImages", "ListJobs"):
            r = env.call(m, user=NOBODY, check=False)
            h.check(r.returncode == 0, f"nobody may call {m}")
        r = env.busctl("introspect", h.BUS, h.OBJ, user=NOBODY, check=False)
        h.check(r.returncode == 0, "nobody may introspect")
        # changing state is not
        for m, sig, args in (("FetchImage", "ssa{sv}", ["file:///x.gz", "x", "0"]), ("RemoveImage", "s", ["x"]),
                             ("CancelJob", "u", ["1"]), ("CreateMachine", "ssua{sv}", ["x", "y", "1", "0"]),
                             ("DestroyMachine", "sa{sv}", ["y", "0"])):
            r = env.call(m, sig, *args, user=NOBODY, check=False)
            h.check(r.returncode != 0 and ("Access denied" in r.stderr or "AccessDenied" in r.stderr),
                    f"nobody is refused {m}")
        r = env.ctl("rm", "x", user=NOBODY)
        h.check(r.returncode == 4 and "hvwgctl:" in r.stderr, "hvwgctl exits 4 on access denied")
        # a member of hvwg passes the policy and the daemon's own check
        r = env.call("RemoveImage", "s", "nothere", user=member, check=False)
        h.check("NoSuchImage" in r.stderr or "no image named" in r.stderr, "hvwg member reaches RemoveImage: " + r.stderr.strip())
        r = env.call("FetchImage", "ssa{sv}", "file://" + env.src + "/x.gz", "m1", "0", user=member, check=False)
        h.check(r.returncode == 0, "hvwg member may fetch: " + r.stderr.strip())

        # validation
        for bad in ("../x", "a/b", "", ".", "..", "a" * 65, "_x", "x y"):  # "-x" would be a busctl option
            r = env.call("RemoveImage", "s", bad, check=False)
            # the daemon's own message: busctl prints "Invalid argument" by itself for its own errors
            h.check(r.returncode != 0 and "invalid image name" in r.stderr, f"RemoveImage({bad!r}) is InvalidArgs: {r.stderr.strip()}")
        r = env.call("InspectImage", "s", "nothere", check=False)
        h.check("no image named nothere" in r.stderr, "InspectImage of a missing image: NoSuchImage")
        r = env.call("CancelJob", "u", "4242", check=False)
        h.check("no job with id 4242" in r.stderr, "CancelJob of a missing job: NoSuchJob")
        r = env.call("ListMachines", user=NOBODY, check=False)
        h.check(r.returncode == 0 and '"data":[[]]' in r.stdout.replace(" ", ""), "nobody may call ListMachines (none yet)")
        r = env.call("FetchImage", "ssa{sv}", "file://" + env.src + "/x.gz", "o", "1", "bogus", "s", "1", check=False)
        h.check("unknown option" in r.stderr, "unknown option refused")
        r = env.call("FetchImage", "ssa{sv}", "file://" + env.src + "/x.gz", "o", "1", "size", "s", "1", check=False)
        h.check("must have type 't'" in r.stderr, "option of the wrong type refused")
        r = env.call("FetchImage", "ssa{sv}", "file://" + env.src + "/x.gz", "o", "1", "sha512", "s", "abc", check=False)
        h.check("128 hexadecimal" in r.stderr, "short sha512 refused")
        r = env.call("FetchImage", "ssa{sv}", "x" * 5000, "o", "0", check=False)
        h.check("longer than 4096" in r.stderr, "over-long source refused")

        # SIGTERM: clean exit, quickly
        t = time.time()
        rc = env.stop_daemon(signal.SIGTERM)
        h.check(rc == 0 and time.time() - t < 5, f"SIGTERM stops hvwgd cleanly (rc {rc})")
        h.check("stopped" in env.log(), "hvwgd logs its stop")


if __name__ == "__main__":
    main()
