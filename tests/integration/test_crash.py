"""Crash safety: hvwgd is killed with SIGKILL at random moments (>= 50 times) while a fetch and a
machine creation run, and restarted each time. After every restart: .tmp is empty, no half
image is listed, every listed image is byte-identical to its source, every machine directory
is a complete machine (listed) and no half-created one is left, and nothing seen before (images,
machines) has been lost. Then SIGTERM with jobs running: canceled cleanly, exit 0 within 5 s."""
import hashlib, json, os, random, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

MIN_ITERATIONS = 50
MAX_SECONDS = 300


def sha256(path):
    d = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            d.update(b)
    return d.hexdigest()


def start_job(env, *args):
    r = env.ctl("--no-wait", "--json", *args)
    return json.loads(r.stdout) if r.returncode == 0 else None


def main():
    with h.Env(conf_extra={"Machine": {"ScratchPerCoreGiB": "1"}}) as env:
        img = h.make_mbr_image(os.path.join(env.src, "a.img"), mib=64)
        want = sha256(img)
        gz = h.gzip_file(img, img + ".gz")
        # machines come from a 256 MiB image with 192 MiB of data, so copies take a while
        big = h.make_data_image(os.path.join(env.src, "b.img"), 256, 192)
        rc, res, err = env.fetch("file://" + big, "base", raw=True)
        h.check(rc == 0, "a base image")
        base_size = os.path.getsize(big)
        srv = h.HttpServer(env.src)  # a throttled source keeps the fetch running when the kill comes
        seen_images, seen_machines = {"base"}, set()
        hashes = {"base": sha256(big)}
        rnd = random.Random(20261125)
        t0 = time.time()
        it = kills_mid_job = 0
        while it < MIN_ITERATIONS or (time.time() - t0 < 20 and it < 200):
            if time.time() - t0 > MAX_SECONDS:
                break
            it += 1
            start_job(env, "create", "base", f"m{it}", "--cores=1", "--no-start")
            start_job(env, "fetch", srv.url + "/slow/a.img.gz?bps=1000000", f"f{it}")
            time.sleep(rnd.uniform(0.0, 0.6))
            if env.call("ListJobs")[0]:
                kills_mid_job += 1
            env.stop_daemon(signal.SIGKILL)
            env.start_daemon()
            tmp = [f for f in env.store_files() if f.startswith(".tmp/")]
            assert not tmp, f"iteration {it}: .tmp not emptied: {tmp}"
            imgs = env.images_list()
            assert seen_images <= set(imgs), f"iteration {it}: images lost: {seen_images - set(imgs)}"
            for name in set(imgs) - seen_images:
                assert sha256(os.path.join(env.images, name + ".raw")) == want, f"iteration {it}: image {name} differs"
            assert sha256(os.path.join(env.images, "base.raw")) == hashes["base"] if it % 10 == 0 else True
            seen_images |= set(imgs)
            h.wait_for(lambda: "connected to libvirt" in env.log(), timeout=10)
            ms = {x[0]: x for x in env.call("ListMachines")[0]}
            dirs = set(h.machine_dirs(env.machines))
            assert dirs == set(ms), f"iteration {it}: machine directories {sorted(dirs)} vs listed {sorted(ms)}"
            for name in set(ms) - seen_machines:
                d = os.path.join(env.machines, name)
                assert os.path.getsize(os.path.join(d, "root.raw")) == base_size and os.path.exists(os.path.join(d, "scratch.img")), \
                    f"iteration {it}: machine {name} incomplete"
                assert ms[name][6] in ("undefined", "broken", "shut-off", "running"), f"iteration {it}: {ms[name]}"
            assert seen_machines <= set(ms), f"iteration {it}: machines lost: {seen_machines - set(ms)}"
            seen_machines |= set(ms)
        elapsed = time.time() - t0
        h.check(it >= MIN_ITERATIONS, f"{it} SIGKILL iterations in {elapsed:.0f} s ({kills_mid_job} with a job running)")
        h.check(kills_mid_job >= it // 4, "a good share of the kills hit running jobs")
        h.check(True, f"after every restart: .tmp empty, {len(seen_images)} images identical to the source, "
                      f"{len(seen_machines)} complete machines, nothing lost")
        h.check("removed leftover" in env.log(), "start-up removed leftovers of killed imports (logged)")
        h.check("interrupted by a crash" in env.log(), "start-up removed half-created machines (logged)")
        srv.close()

        # SIGTERM with jobs running
        start_job(env, "fetch", "file://" + gz, "t-fetch")
        start_job(env, "create", "base", "t-machine", "--cores=1", "--no-start")
        time.sleep(0.05)
        t = time.time()
        rc = env.stop_daemon(signal.SIGTERM)
        h.check(rc == 0 and time.time() - t < 5, f"SIGTERM with jobs running: exit {rc} in {time.time() - t:.2f} s")
        env.start_daemon()
        h.check(not [f for f in env.store_files() if f.startswith(".tmp/")], "SIGTERM: nothing left in .tmp")
        h.check(set(h.machine_dirs(env.machines)) == {x[0] for x in env.call("ListMachines")[0]}, "SIGTERM: no half machine")


if __name__ == "__main__":
    main()
