"""One hvwgd per store: a second daemon on the same stores exits at once, touching nothing,
while a fetch and a machine creation of the first are in flight. Two daemons with their own
stores on one libvirtd each adopt only their own machines."""
import json, os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def second_instance():
    with h.Env(conf_extra={"Machine": {"ScratchPerCoreGiB": "1"}}) as env:
        big = h.make_data_image(os.path.join(env.src, "big.img"), 1024, 960)
        rc, res, err = env.fetch("file://" + big, "big", raw=True)
        h.check(rc == 0, "a 1 GiB image of data")
        img = h.make_mbr_image(os.path.join(env.src, "s.img"), mib=64)
        gz = h.gzip_file(img, img + ".gz")
        srv = h.HttpServer(env.src)
        try:
            r = env.ctl("--no-wait", "fetch", srv.url + "/slow/s.img.gz?bps=100000", "inflight")
            fetch_id = int(r.stdout.split()[0])
            r = env.ctl("--no-wait", "--json", "create", "big", "vm", "--cores=1", "--no-start")
            create_id = json.loads(r.stdout)["id"]
            mdir = os.path.join(env.machines, "vm")
            h.check(h.wait_for(lambda: os.path.exists(os.path.join(mdir, ".creating")), 10), "a creation is in flight")
            tmp_before = sorted(os.listdir(os.path.join(env.images, ".tmp")))
            h.check(tmp_before, "a fetch is in flight: " + ", ".join(tmp_before))
            t = time.monotonic()
            second = subprocess.run([h.HVWGD, "--bus-address=" + env.address, "--config=" + env.conf],
                                    capture_output=True, text=True, timeout=30)
            took = time.monotonic() - t
            h.check(second.returncode != 0 and "in use by another hvwgd (pid %d)" % env.daemon.pid in second.stderr,
                    f"a second hvwgd on the same stores exits at once ({took:.2f} s): " + second.stderr.strip().splitlines()[-1])
            h.check("removed" not in second.stderr, "  having removed nothing")
            h.check(os.path.exists(os.path.join(mdir, ".creating")) or os.path.exists(os.path.join(mdir, "machine.meta")),
                    "  the creation in flight is untouched")
            h.check(set(tmp_before) <= set(os.listdir(os.path.join(env.images, ".tmp"))), "  the fetch's temp file is still there")
            h.check(h.wait_for(lambda: not env.call("ListJobs")[0], 60), "both jobs end")
            log = env.log()
            h.check(f"job {fetch_id} (fetch inflight) done" in log and f"job {create_id} (create vm) done" in log,
                    "  both done")
        finally:
            srv.close()


def shared_libvirt():
    tmp = h.need_libvirtd()
    libvirtd, uri, ok = h.start_libvirtd(tmp)
    try:
        h.check(ok, "a private libvirtd is up")
        conf = {"Machine": {"LibvirtURI": uri, "Hypervisor": "qemu", "ScratchPerCoreGiB": "1"}}
        with h.Env(conf_extra=conf) as a, h.Env(conf_extra=conf) as b:
            for env, name in ((a, "of-a"), (b, "of-b")):
                img = h.make_mbr_image(os.path.join(env.src, "v.img"), mib=16, parts="label: dos\nstart=2048, type=83\n")
                rc, res, err = env.fetch("file://" + img, "v", raw=True)
                r = env.ctl("create", "v", name, "--cores=1", "--scratch=0", "--no-start")
                h.check(rc == 0 and r.returncode == 0, f"machine {name} defined " + r.stderr.strip())
            for env in (a, b):
                env.stop_daemon()
                env.start_daemon()
            la = sorted(x[0] for x in a.call("ListMachines")[0])
            lb = sorted(x[0] for x in b.call("ListMachines")[0])
            h.check(la == ["of-a"] and lb == ["of-b"], f"after a restart each lists only its own machine ({la}, {lb})")
            h.check("belongs to the hvwgd of MachineRoot " + b.machines in a.log(), "  and says why it left the other")
            for env, name in ((a, "of-a"), (b, "of-b")):
                r = env.ctl("destroy", name)
                h.check(r.returncode == 0, f"{name} destroyed by its own daemon")
    finally:
        h.stop_process(libvirtd)
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    second_instance()
    shared_libvirt()


if __name__ == "__main__":
    main()
