"""FetchImage over http://: round trip, 404, redirects, redirect loops, a stalled server,
cancel mid-download (CancelJob and Job.Cancel, and Ctrl-C in hvwgctl), User-Agent."""
import os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

E = "org.hepix.hvwg1.Error."


def main():
    with h.Env(conf_extra={"Fetch": {"StallTimeoutSec": "3", "MaxRedirects": "3"}}) as env:
        srv = h.HttpServer(env.src)
        try:
            img = h.make_mbr_image(os.path.join(env.src, "web.img"), mib=64)
            gz = h.gzip_file(img, os.path.join(env.src, "web.img.gz"))
            before = env.store_files()
            rc, res, err = env.fetch(srv.url + "/f/web.img.gz", sha512=h.sha512_file(gz))
            h.check(rc == 0, f"http fetch: done {err.strip()}")
            h.check(subprocess.run(["cmp", img, os.path.join(env.images, "web.raw")]).returncode == 0, "http image identical")
            ver = env.prop("Version")
            h.check(srv.agents and srv.agents[-1] == "hvwgd/" + ver, f"User-Agent hvwgd/{ver} ({srv.agents[-1:]})")
            before = env.store_files()

            rc, res, err = env.fetch(srv.url + "/redirect/web.img.gz", "redir")
            h.check(rc == 0, "a redirect is followed")
            env.ctl("rm", "redir")
            time.sleep(0.2)

            def fails(uri, error, words, name="bad"):
                rc, res, err = env.fetch(uri, name)
                msg = res["error_message"] if res else err
                h.check(rc == 1 and res and res["error_name"] == E + error and all(w in msg for w in words), f"{error}: {msg}")
                h.check(env.store_files() == before, "  store unchanged")

            fails(srv.url + "/f/nothere.gz", "FetchFailed", ["HTTP status 404", "/f/nothere.gz"])
            fails(srv.url + "/loop", "FetchFailed", ["redirects"])
            fails("http://127.0.0.1:1/x.gz", "FetchFailed", ["127.0.0.1"])
            t = time.time()
            fails(srv.url + "/stall/web.img.gz", "FetchFailed", ["stalled", "3 s"])
            h.check(time.time() - t < 30, "a stalled download fails after StallTimeoutSec")

            # cancel through CancelJob while the download crawls along
            for how in ("CancelJob", "Job.Cancel"):
                r = env.ctl("--no-wait", "--json", "fetch", srv.url + "/slow/web.img.gz?bps=50000", "slow")
                import json
                job = json.loads(r.stdout)
                h.check(h.wait_for(lambda: env.busctl("get-property", h.BUS, job["path"], "org.hepix.hvwg1.Job", "Phase",
                                                    check=False).stdout.strip() == 's "download"'), "job reaches download")
                h.check(h.wait_for(lambda: int(env.prop("BytesDone", job["path"], "org.hepix.hvwg1.Job")) > 0), "bytes arrive")
                total = env.prop("BytesTotal", job["path"], "org.hepix.hvwg1.Job")
                h.check(total == os.path.getsize(gz), "BytesTotal is the Content-Length")
                t = time.time()
                if how == "CancelJob":
                    env.call("CancelJob", "u", job["id"])
                else:
                    env.busctl("call", h.BUS, job["path"], "org.hepix.hvwg1.Job", "Cancel")
                gone = h.wait_for(lambda: env.call("ListJobs") == [[]], timeout=10, step=0.02)
                h.check(gone and time.time() - t < 1.5, f"{how}: job gone in {time.time() - t:.2f}s")
                h.check("job %d (fetch slow) canceled" % job["id"] in env.log(), f"{how}: result canceled")
                h.check(env.store_files() == before, f"{how}: nothing left behind")

            # Ctrl-C in hvwgctl cancels the job and exits 3
            p = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "fetch", srv.url + "/slow/web.img.gz?bps=50000",
                                  "ctrlc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            h.wait_for(lambda: env.call("ListJobs") != [[]])
            time.sleep(0.5)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=15)
            h.check(p.returncode == 3 and "canceled" in err, f"Ctrl-C: exit 3, says canceled ({p.returncode}, {err.strip()})")
            h.check(env.store_files() == before, "Ctrl-C: nothing left behind")
        finally:
            srv.close()


if __name__ == "__main__":
    main()
