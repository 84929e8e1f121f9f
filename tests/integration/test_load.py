"""Load (short variant; bench/load.sh is the 30 s benchmark): 8 clients call ListImages, ListJobs
and a property read as fast as they can for a few seconds while two imports run. Zero errors,
and both imports still finish with images identical to their source."""
import os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def main():
    load = os.environ.get("HVWG_LOAD")
    if not load or not os.path.exists(load):
        h.skip("hvwg-load is not built (HVWG_LOAD)")
    with h.Env() as env:
        srv = h.HttpServer(env.src)
        try:
            img = h.make_mbr_image(os.path.join(env.src, "l.img"), mib=64)
            h.gzip_file(img, img + ".gz")
            jobs = [env.ctl("--no-wait", "fetch", srv.url + "/slow/l.img.gz?bps=150000", f"l{i}") for i in range(2)]
            h.check(all(j.returncode == 0 for j in jobs), "two imports running")
            r = subprocess.run([load, "--bus-address=" + env.address, "--clients=8", "--seconds=4"], capture_output=True, text=True,
                               timeout=120)
            print(r.stdout.strip())
            h.check(r.returncode == 0 and " errors 0," in r.stdout, "8 clients for 4 s: zero errors " + r.stderr.strip()[:200])
            calls = int(r.stdout.split("calls ")[1].split()[0])
            h.check(calls > 1000, f"{calls} calls answered")
            h.check(h.wait_for(lambda: env.call("ListJobs") == [[]], timeout=60), "both imports finish")
            for i in range(2):
                h.check(subprocess.run(["cmp", img, os.path.join(env.images, f"l{i}.raw")]).returncode == 0, f"image l{i} is identical")
        finally:
            srv.close()


if __name__ == "__main__":
    main()
