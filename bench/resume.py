#!/usr/bin/env python3
"""Resume benchmark (not a test): a 128 MiB incompressible gzip image served over loopback by the
tests' HTTP server, whose connection drops at 25 %, 50 % and 75 % of the file (one drop per
request, real ETag/Range/If-Range). Measured in one run, alternating, N rounds:
  - hvwgd, no drops (FetchImage, end to end: download, SHA-512, inflate, write, verify, publish)
  - hvwgd, three drops (Retries=3, RetryMaxDelaySec=1: it resumes with Range)
  - the peer, three drops: `curl --retry 3 --retry-delay 1 --retry-all-errors`, which starts
    each try over from byte 0 (what a client without resume does), then `gunzip`
  - the machine's limit: `curl -o /dev/null` of the file without drops
Prints time and bytes the origin sent for each, the ratios, and the seconds hvwgd spent in
backoff. usage: bench/resume.py [--runs N]"""
import os, re, shutil, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchenv import harness as h, top  # noqa: E402

DROPS = "0.25,0.5,0.75"


def main():
    runs = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--runs" else 3
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    work = tempfile.mkdtemp(prefix="hvwg-bench-resume-")
    try:
        with h.Env(conf_extra={"Fetch": {"Retries": "3", "RetryMaxDelaySec": "1"}}) as env:
            img = h.make_mbr_image(os.path.join(env.src, "r.img"), mib=136, parts="label: dos\nstart=2048, type=83\n")
            with open(img, "r+b") as f:
                f.seek(1 << 20)
                f.write(os.urandom(128 << 20))
            gz = h.gzip_file(img, img + ".gz", level=1)
            size = os.path.getsize(gz)
            sha = h.sha512_file(gz)
            srv = h.HttpServer(env.src)
            res = {k: [] for k in ("clean", "drops", "peer", "limit")}
            sent = {k: [] for k in res}

            def serve(tag):
                """A fresh name for the file (the server counts bytes per path)."""
                name = f"r-{tag}.img.gz"
                p = os.path.join(env.src, name)
                if not os.path.exists(p):
                    os.link(gz, p)
                return name

            def hvwgd(kind, i):
                name = serve(f"{kind}{i}")
                path = f"/{'cache' if kind == 'clean' else 'drop'}/{name}"
                t0 = time.time()
                rc, out, err = env.fetch(srv.url + path + (f"?at={DROPS}" if kind == "drops" else ""), f"{kind}{i}", sha512=sha)
                took = time.time() - t0
                if rc != 0:
                    sys.exit(f"hvwgd {kind}: {err}")
                env.call("RemoveImage", "s", f"{kind}{i}")
                return took, srv.sent_by.get(path, 0)

            def peer(i):
                name = serve(f"peer{i}")
                path = f"/drop/{name}"
                out = os.path.join(work, "peer.img")
                t0 = time.time()
                r = subprocess.run(f"curl -sS --fail --retry 3 --retry-delay 1 --retry-all-errors -o {out}.gz "
                                   f"'{srv.url}{path}?at={DROPS}' && gunzip -c {out}.gz | cp --sparse=always /dev/stdin {out} && sync {out}",
                                   shell=True, capture_output=True, text=True)
                took = time.time() - t0
                if r.returncode != 0 or h.sha512_file(out + ".gz") != sha:
                    sys.exit(f"peer: {r.stderr}")
                os.unlink(out)
                os.unlink(out + ".gz")
                return took, srv.sent_by.get(path, 0)

            def limit(i):
                name = serve(f"limit{i}")
                path = f"/cache/{name}"
                t0 = time.time()
                subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", srv.url + path], check=True)
                return time.time() - t0, srv.sent_by.get(path, 0)

            for i in range(runs):
                for k, fn in (("clean", lambda i: hvwgd("clean", i)), ("drops", lambda i: hvwgd("drops", i)), ("peer", peer),
                              ("limit", limit)):
                    t, b = fn(i)
                    res[k].append(t)
                    sent[k].append(b)
            srv.close()
            log = env.log()
            waits = [int(x) for x in re.findall(r"try \d+ of \d+ in (\d+) s", log)]

        med = {k: statistics.median(v) for k, v in res.items()}
        print(f"resume benchmark, {runs} rounds alternating; {os.cpu_count()} CPUs: {cpu}")
        print(f"  file: {size} bytes (gzip -1 of 128 MiB random + MBR); drops at {DROPS} of the file, one per request")
        label = {"clean": "hvwgd, no drops", "drops": "hvwgd, 3 drops (resume)", "peer": "curl --retry, 3 drops (from 0) + gunzip",
                 "limit": "curl -o /dev/null, no drops (the limit)"}
        for k in res:
            print(f"  {label[k]:44s} median {med[k]:6.2f} s  best {min(res[k]):6.2f} s  origin sent {statistics.median(sent[k]) / size:5.2f}× the file")
        print(f"  hvwgd backoff sleeps: {sum(waits)} s over {len(waits)} retries in all ({sum(waits) / max(runs, 1):.1f} s per round)")
        print(f"  3 drops / no drops (hvwgd): {med['drops'] / med['clean']:.2f}×;  peer / hvwgd with drops: {med['peer'] / med['drops']:.2f}×;"
              f"  hvwgd with drops / limit: {med['drops'] / med['limit']:.2f}×")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
