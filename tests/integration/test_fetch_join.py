"""One download per image: eight FetchImage calls for one URL under eight names while it
downloads make one request at the origin; the seven others wait ("waiting", with the first's
progress) and are published as hard links of the first's file: eight byte-identical images,
the space of one. The same name asked for again gets a job that waits and ends done. A waiter whose own sha512
differs from what came fails with ChecksumMismatch; waiters of a download that failed fail the
same way; waiters of a download its owner canceled download after all, once. MaxBandwidth holds
two concurrent downloads together to the host's budget."""
import json, os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def results_of(env, started):
    """The jobs' ends as `hvwgctl wait` reports them, all watched at once: [(exit code, stderr)]."""
    ps = [subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "--verbose", "wait", str(j["id"])],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for j in started]
    return [(p.wait(120), p.stderr.read()) for p in ps]


def main():
    with h.Env(conf_extra={"Fetch": {"MaxConcurrent": "4"}}) as env:
        srv = h.HttpServer(env.src)
        try:
            img = h.make_mbr_image(os.path.join(env.src, "j.img"), mib=8, parts="label: dos\nstart=2048, type=83\n")
            with open(img, "r+b") as f:  # 6 MiB of incompressible data
                f.seek(1 << 20)
                f.write(os.urandom(6 << 20))
            gz = h.gzip_file(img, img + ".gz", level=1)
            sha = h.sha512_file(gz)
            url = srv.url + "/cache/j.img.gz?bps=2000000"

            # eight names, one URL, all asked for while the first downloads
            started = [env.start_fetch(url, f"n{i}", *([f"--sha512={sha}"] if i % 2 else [])) for i in range(8)]
            lead = started[0]["id"]
            again = env.start_fetch(url, "n3")
            phases = {x[0]: x[3] for x in env.jobs()}
            h.check(phases[started[0]["id"]] in ("queued", "download") and all(phases[s["id"]] == "waiting" for s in started[1:]),
                    f"the first downloads, seven wait: {phases}")
            h.check(again["id"] not in [s["id"] for s in started] and phases[again["id"]] == "waiting",
                    "the same name and URL again: not ImageBusy but a job of its own that waits")
            (rc_again, err_again), = results_of(env, [again])
            h.check(rc_again == 0, "… and ends done with the download " + err_again.strip())
            h.check(h.wait_for(lambda: env.jobs() == [], timeout=120), "all eight end")
            got = srv.requests.get("/cache/j.img.gz", [])
            h.check(len(got) == 1, f"the origin saw one download: {got}")
            imgs = env.images_list()
            h.check(all(f"n{i}" in imgs for i in range(8)), f"eight images published: {sorted(imgs)}")
            paths = [os.path.join(env.images, f"n{i}.raw") for i in range(8)]
            h.check(all(subprocess.run(["cmp", img, p]).returncode == 0 for p in paths), "all eight byte-identical to the source")
            inodes = {os.stat(p).st_ino for p in paths}
            h.check(len(inodes) == 1 and os.stat(paths[0]).st_nlink == 8, "one file under eight names (hard links): the space of one")
            du = int(subprocess.run(["du", "-s", "--block-size=1", env.images], capture_output=True, text=True).stdout.split()[0])
            h.check(du < 2 * h.allocated(paths[0]), f"the store holds the data once (du {du})")
            h.check(f"waits for job {lead}" in env.log() and "published as a second name of image n0" in env.log(), "logged")
            meta = open(os.path.join(env.images, "n5.meta")).read()
            h.check(f"sha512={sha}" in meta, "the second name's metadata has the digest")

            # removing one name leaves the others
            env.call("RemoveImage", "s", "n0")
            h.check(subprocess.run(["cmp", img, paths[1]]).returncode == 0, "RemoveImage of the first name keeps the others")

            # a waiter that expects another digest: ChecksumMismatch, the first is fine
            url2 = srv.url + "/cache/j.img.gz?bps=2000000&v=2"
            a = env.start_fetch(url2, "m0")
            b = env.start_fetch(url2, "m1", "--sha512=" + "0" * 128)
            h.check(any(x[2] == "m1" and x[3] == "waiting" for x in env.jobs()), "a fetch with a sha512 joins one without")
            (rc_a, err_a), (rc_b, err_b) = results_of(env, [a, b])
            h.check(rc_a == 0 and rc_b != 0 and "ChecksumMismatch" in err_b and "which this fetch joined" in err_b,
                    "the waiter's own digest is checked: ChecksumMismatch " + err_b.strip())
            h.check("m1" not in env.images_list() and len(srv.requests["/cache/j.img.gz"]) == 2, "nothing published, no second download")

            # the download fails: every waiter fails the same way
            url3 = srv.url + "/cache/j.img.gz?bps=2000000&v=3"
            bad = "1" * 128
            ws = [env.start_fetch(url3, f"f{i}", "--sha512=" + bad) for i in range(3)]
            res = results_of(env, ws)
            h.check(all(r[0] != 0 and "ChecksumMismatch" in r[1] for r in res), "a failed download: its waiters fail the same way " +
                    " | ".join(r[1].strip() for r in res))
            h.check(len(srv.requests["/cache/j.img.gz"]) == 3 and not any(f"f{i}" in env.images_list() for i in range(3)),
                    "one download for three, nothing published")

            # the download's owner cancels it: the waiters download after all, once
            url4 = srv.url + "/cache/j.img.gz?bps=2000000&v=4"
            cs = [env.start_fetch(url4, f"c{i}") for i in range(3)]
            h.wait_for(lambda: any(x[2] == "c0" and x[3] == "download" for x in env.jobs()))
            watch = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "wait", str(cs[2]["id"])],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            env.call("CancelJob", "u", cs[0]["id"])
            res = results_of(env, cs[1:2]) + [(watch.wait(120), watch.stderr.read())]
            h.check(all(r[0] == 0 for r in res), "the waiters of a canceled download finish " + " | ".join(r[1].strip() for r in res))
            h.check(len(srv.requests["/cache/j.img.gz"]) == 5, f"one more download for both: {len(srv.requests['/cache/j.img.gz'])} in all")
            h.check(os.stat(os.path.join(env.images, "c1.raw")).st_ino == os.stat(os.path.join(env.images, "c2.raw")).st_ino,
                    "the second waiter links the first waiter's download")
            h.check([f for f in env.store_files() if f.startswith(".tmp")] == [], "nothing left in .tmp")
        finally:
            srv.close()

    # MaxBandwidth: two downloads at once share one budget of 4 MiB/s
    with h.Env(conf_extra={"Fetch": {"MaxConcurrent": "2", "MaxBandwidth": "4M"}}) as env:
        srv = h.HttpServer(env.src)
        try:
            img = h.make_mbr_image(os.path.join(env.src, "b.img"), mib=8, parts="label: dos\nstart=2048, type=83\n")
            with open(img, "r+b") as f:
                f.seek(1 << 20)
                f.write(os.urandom(6 << 20))
            gz = h.gzip_file(img, img + ".gz", level=1)
            total = 2 * os.path.getsize(gz)
            t0 = time.time()
            bw = [env.start_fetch(srv.url + f"/f/b.img.gz?n={i}", f"b{i}") for i in range(2)]
            res = results_of(env, bw)
            took = time.time() - t0
            h.check(all(r[0] == 0 for r in res) and "b0" in env.images_list() and "b1" in env.images_list(), "both published")
            h.check(took >= 0.85 * total / (4 << 20), f"{total} bytes in {took:.2f} s: no faster than MaxBandwidth=4M together "
                    f"({total / took / (1 << 20):.2f} MiB/s)")
        finally:
            srv.close()
    print("PASS test_fetch_join")


if __name__ == "__main__":
    main()
