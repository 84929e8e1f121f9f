"""hvwgd and a real libvirtd that goes away and comes back: the close callback notices, calls
fail with LibvirtError meanwhile while the registry keeps answering, the thread reconnects
with backoff, and work resumes. A machine whose disk disappeared is reported `broken` after a
restart, and can still be destroyed."""
import os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

E = "org.hepix.hvwg1.Error."


def main():
    tmp = h.need_libvirtd()
    libvirtd, uri, ok = h.start_libvirtd(tmp)
    try:
        h.check(ok, "a private libvirtd is up")
        with h.Env(conf_extra={"Machine": {"LibvirtURI": uri, "Hypervisor": "qemu", "ScratchPerCoreGiB": "1"}}) as env:
            img = h.make_mbr_image(os.path.join(env.src, "v.img"), mib=16, parts="label: dos\nstart=2048, type=83\n")
            rc, res, err = env.fetch("file://" + img, "v", raw=True)
            h.check(rc == 0 and h.wait_for(lambda: "connected to libvirt" in env.log(), timeout=20), "image fetched, libvirt connected")
            r = env.ctl("create", "v", "m1", "--cores=1", "--scratch=0", "--no-start")
            h.check(r.returncode == 0, "machine m1 defined on the real libvirtd " + r.stderr.strip())

            h.stop_process(libvirtd)
            h.check(h.wait_for(lambda: "libvirt connection closed" in env.log(), timeout=30), "the loss of libvirtd is noticed")
            r = env.ctl("--json", "create", "v", "m2", "--cores=1", "--scratch=0", "--no-start")
            h.check(r.returncode == 1 and '"error_name":"' + E + 'LibvirtError"' in r.stdout.replace(" ", ""),
                    "CreateMachine without libvirt: LibvirtError " + r.stdout.strip()[:200])
            h.check(not os.path.exists(os.path.join(env.machines, "m2")), "  and nothing left behind")
            h.check("m1" in {x[0] for x in env.call("ListMachines")[0]}, "ListMachines still answers from the registry")

            libvirtd, uri2, ok = h.start_libvirtd(tmp)
            h.check(ok and uri2 == uri, "libvirtd is back on the same socket")
            t = time.time()
            h.check(h.wait_for(lambda: env.log().count("connected to libvirt at") >= 2, timeout=60),
                    f"hvwgd reconnects by itself ({time.time() - t:.1f} s, with backoff)")
            r = env.ctl("create", "v", "m2", "--cores=1", "--scratch=0", "--no-start")
            h.check(r.returncode == 0, "CreateMachine works again " + r.stderr.strip())

            os.unlink(os.path.join(env.machines, "m1", "root.raw"))
            env.stop_daemon()
            env.start_daemon()
            h.wait_for(lambda: "connected to libvirt" in env.log().split("hvwgd 0.1.0 ready")[-1], timeout=20)
            ms = {x[0]: x for x in env.call("ListMachines")[0]}
            h.check(ms.get("m1", [None] * 7)[6] == "broken" and ms.get("m2", [None] * 7)[6] == "shut-off",
                    f"after a restart: m1 (root disk deleted) is broken, m2 is shut-off ({[(k, v[6]) for k, v in ms.items()]})")
            h.check("reported as broken" in env.log(), "  and the log says why")
            for name in ("m1", "m2"):
                r = env.ctl("destroy", name)
                h.check(r.returncode == 0, f"DestroyMachine {name} " + r.stderr.strip())
            r = subprocess.run(["virsh", "-c", uri, "list", "--all", "--name"], capture_output=True, text=True)
            h.check(not ({"m1", "m2"} & set(r.stdout.split())), "libvirt no longer has either domain")
    finally:
        h.stop_process(libvirtd)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
