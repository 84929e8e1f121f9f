"""Fetch across a bad network: a download that drops at 10 %, 50 % and 99 % resumes with Range
(If-Range with the ETag) where the verified stream stopped and publishes a byte-identical image,
with about one file's worth of bytes sent in all; a server that ignores Range (200) or whose
ETag changed makes it start over (logged); 503 twice, then success; a download that keeps
dropping fails with FetchFailed naming the tries, nothing left behind; a stall is retried;
404 is not; the job shows phase "retry" between tries."""
import json, os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def main():
    with h.Env(conf_extra={"Fetch": {"Retries": "3", "RetryMaxDelaySec": "1", "StallTimeoutSec": "2"}}) as env:
        srv = h.HttpServer(env.src)
        try:
            img = h.make_mbr_image(os.path.join(env.src, "r.img"), mib=24, parts="label: dos\nstart=2048, type=83\n")
            with open(img, "r+b") as f:  # 20 MiB of incompressible data: the download is as large
                f.seek(1 << 20)
                f.write(os.urandom(20 << 20))
            gz = h.gzip_file(img, img + ".gz", level=1)
            size = os.path.getsize(gz)
            sha = h.sha512_file(gz)

            rc, res, err = env.fetch(srv.url + "/drop/r.img.gz?at=0.1,0.5,0.99", "dropped", sha512=sha, size=size)
            h.check(rc == 0, "three drops (10 %, 50 %, 99 %): done " + err.strip())
            h.check(subprocess.run(["cmp", img, os.path.join(env.images, "dropped.raw")]).returncode == 0, "the image is byte-identical")
            reqs = srv.requests["/drop/r.img.gz"]
            h.check(len(reqs) == 4 and reqs[0] == "" and all(r.startswith("bytes=") and r.endswith("-") for r in reqs[1:]),
                    f"four requests, the last three with Range: {reqs}")
            offsets = [int(r[6:-1]) for r in reqs[1:]]
            h.check(offsets == sorted(offsets) and abs(offsets[0] - size // 10) < (1 << 20),
                    f"each resumes where the stream stopped: {offsets} of {size}")
            sent = srv.sent_by["/drop/r.img.gz"]
            h.check(size <= sent <= size + 3 * (1 << 20), f"bytes sent in all: {sent} for a file of {size} (+ at most the overlaps)")
            log = env.log()
            h.check("try 2 of 4" in log and "resuming after the bytes already here" in log, "the retries are logged")

            rc, res, err = env.fetch(srv.url + "/range200/r.img.gz", "r200", sha512=sha)
            h.check(rc == 0 and subprocess.run(["cmp", img, os.path.join(env.images, "r200.raw")]).returncode == 0,
                    "a server that ignores Range: started over, byte-identical " + err.strip())
            h.check("answered the resumed request with the whole file" in env.log() and "starting the download over from byte 0" in env.log(),
                    "logged: it ignores Range, starting over")

            rc, res, err = env.fetch(srv.url + "/etagchange/r.img.gz", "retag", sha512=sha)
            reqs = srv.requests["/etagchange/r.img.gz"]
            h.check(rc == 0 and len(reqs) >= 2 and subprocess.run(["cmp", img, os.path.join(env.images, "retag.raw")]).returncode == 0,
                    f"the ETag changed mid-way: If-Range makes the server send it whole, started over ({len(reqs)} requests)")

            rc, res, err = env.fetch(srv.url + "/status/r.img.gz?code=503&n=2", "busy", sha512=sha)
            h.check(rc == 0 and len(srv.requests["/status/r.img.gz"]) == 3, "503 twice, then it works")

            # conditional GET: replacing an image from the same, unchanged URL
            meta = open(os.path.join(env.images, "busy.meta")).read()
            h.check('etag="v1"' in meta and "last_modified=Wed, 25 Nov 2026 10:00:00 GMT" in meta, "the validators are in the metadata")
            ino = os.stat(os.path.join(env.images, "busy.raw")).st_ino
            sent0 = srv.sent_by.get("/status/r.img.gz", 0)
            rc, res, err = env.fetch(srv.url + "/status/r.img.gz?code=503&n=2", "busy", replace=True)
            h.check(rc == 0 and res["result"] == "done" and os.stat(os.path.join(env.images, "busy.raw")).st_ino == ino and
                    srv.sent_by.get("/status/r.img.gz", 0) == sent0, "replace=true of an unchanged URL: 304, done, nothing written")
            h.check("is not modified (HTTP 304); image busy kept as it is" in env.log(), "logged: not modified")

            before = env.store_files()
            t0 = time.time()
            w = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "--json", "--no-wait", "fetch", srv.url + "/dropall/r.img.gz",
                                  "never"], stdout=subprocess.PIPE, text=True)
            job = json.loads(w.communicate()[0])
            phases = set()
            while time.time() - t0 < 60 and env.call("ListJobs") != [[]]:
                for j in env.call("ListJobs")[0]:
                    phases.add(j[3])
                time.sleep(0.05)
            h.check("retry" in phases, f"the job's phase shows the retries: {sorted(phases)}")
            removed = [l for l in env.log().splitlines() if f"job {job['id']} (fetch never) failed" in l]
            h.check(removed and "after 4 tries; [Fetch] Retries=3" in removed[0], "dropping every time: FetchFailed naming the tries: " +
                    (removed[0][-160:] if removed else "?"))
            h.check(env.store_files() == before, "nothing left behind")

            rc, res, err = env.fetch(srv.url + "/stall/r.img.gz", "stalled")
            # (this endpoint sends no validator: a retry cannot resume, it starts over)
            h.check(rc == 1 and "stalled" in (res or {}).get("error_message", "") and "started over 2 times" in res["error_message"],
                    "a stall is retried (from byte 0: no ETag to resume by), then fails saying so: " + (res or {}).get("error_message", ""))
            t0 = time.time()
            rc, res, err = env.fetch(srv.url + "/f/missing.gz", "missing")
            h.check(rc == 1 and "404" in res["error_message"] and "tries" not in res["error_message"] and time.time() - t0 < 2,
                    "404 is not retried")
        finally:
            srv.close()


if __name__ == "__main__":
    main()
