"""Jobs under pressure: one name twice, queueing beyond MaxConcurrent, bus calls answered while
imports run, SIGTERM with jobs running, kill -9 mid-import and restart."""
import json, os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def main():
    with h.Env(conf_extra={"Fetch": {"MaxConcurrent": "2"}}) as env:
        srv = h.HttpServer(env.src)
        try:
            img = h.make_mbr_image(os.path.join(env.src, "d.img"), mib=64)
            gz = h.gzip_file(img, os.path.join(env.src, "d.img.gz"))
            slow = srv.url + "/slow/d.img.gz?bps=400000"

            # the same name twice: the second is refused while the first runs
            j = env.start_fetch(slow, "same")
            r = env.ctl("--verbose", "fetch", "file://" + gz, "same")
            h.check(r.returncode == 1 and "ImageBusy" in r.stderr and f"job {j['id']}" in r.stderr,
                    "second fetch of a name being fetched: ImageBusy " + r.stderr.strip())
            env.call("CancelJob", "u", j["id"])
            h.wait_for(lambda: env.jobs() == [])

            # 4 at once with MaxConcurrent=2: two run, two queue, in order; all finish
            started = [env.start_fetch(srv.url + f"/slow/d.img.gz?bps=250000&n={i}", f"c{i}") for i in range(4)]
            time.sleep(0.5)
            phases = {x[2]: x[3] for x in env.jobs()}
            h.check(phases.get("c0") != "queued" and phases.get("c1") != "queued" and
                    phases.get("c2") == "queued" and phases.get("c3") == "queued", f"two run, two queue: {phases}")
            h.check(env.prop("ActiveJobs") == 4, "ActiveJobs counts queued and running jobs")
            # bus calls stay fast while imports run
            worst = 0
            for _ in range(20):
                t = time.time()
                env.call("ListImages")
                worst = max(worst, time.time() - t)
            h.check(worst < 0.5, f"ListImages answers while imports run (worst {worst * 1000:.0f} ms incl. busctl start-up)")
            h.check(h.wait_for(lambda: env.jobs() == [], timeout=120), "all four finish")
            imgs = env.images_list()
            h.check(all(f"c{i}" in imgs for i in range(4)), "all four images published")
            h.check(all(subprocess.run(["cmp", img, os.path.join(env.images, f"c{i}.raw")]).returncode == 0 for i in range(4)),
                    "all four identical to the source")
            log = env.log()
            order = [log.index(f"(fetch c{i}) done") for i in range(4)]
            h.check(order[2] > min(order[0], order[1]) and order[3] > min(order[0], order[1]), "queued jobs start after running ones end")

            # SIGTERM with jobs running: canceled, exit within 5 s, nothing half-made
            for i in range(3):
                env.start_fetch(srv.url + f"/slow/d.img.gz?bps=100000&n={i}", f"t{i}")
            h.wait_for(lambda: any(x[3] == "download" for x in env.jobs()))
            time.sleep(0.3)
            t = time.time()
            rc = env.stop_daemon(signal.SIGTERM)
            h.check(rc == 0 and time.time() - t < 5, f"SIGTERM with running jobs: exit {rc} in {time.time() - t:.2f}s")
            h.check(not [f for f in env.store_files() if f.startswith(".tmp/")], "SIGTERM: temp files removed")
            env.start_daemon()
            h.check(not any(n.startswith("t") for n in env.images_list()), "SIGTERM: no half image after restart")

            # kill -9 mid-import: leftovers cleaned at start-up, nothing half listed
            env.start_fetch(srv.url + "/slow/d.img.gz?bps=200000", "k9")
            h.check(h.wait_for(lambda: [f for f in env.store_files() if f.startswith(".tmp/")]), "an import has a temp file")
            time.sleep(0.5)
            env.stop_daemon(signal.SIGKILL)
            left = [f for f in env.store_files() if f.startswith(".tmp/")]
            h.check(left, f"kill -9 leaves a temp file behind: {left}")
            env.start_daemon()
            h.check(not [f for f in env.store_files() if f.startswith(".tmp/")], ".tmp emptied at start-up")
            h.check("removed leftover" in env.log(), "start-up logs the leftovers it removed")
            h.check("k9" not in env.images_list() and sorted(env.images_list()) == [f"c{i}" for i in range(4)],
                    "no half image listed; earlier images kept")
        finally:
            srv.close()


if __name__ == "__main__":
    main()
