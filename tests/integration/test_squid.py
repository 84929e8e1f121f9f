"""Fetch through a real Squid (Debian's squid, started here on a loopback port with its own
config, cache and logs): two hvwgd instances with two private stores fetch the same 6 MiB image
through it ([Fetch] Proxy=); the origin serves it once, Squid's access log shows a MISS then a
HIT, both images are byte-identical, and hvwgd logs the cache's Via/X-Cache headers. A replace
of the same URL through the proxy is a conditional request: not modified, nothing written."""
import os, pwd, shutil, signal, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

SQUID_CONF = """http_port 127.0.0.1:{port}
visible_hostname hvwg-test-squid
pid_filename {d}/squid.pid
coredump_dir {d}
cache_dir ufs {d}/cache 256 16 64
cache_mem 8 MB
maximum_object_size 64 MB
access_log stdio:{d}/access.log squid
cache_log {d}/cache.log
cache_store_log none
logfile_rotate 0
cache_effective_user {user}
shutdown_lifetime 1 seconds
acl here src 127.0.0.1/32
http_access allow here
http_access deny all
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Squid:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hvwg-squid-")
        os.chmod(self.dir, 0o755)
        user = "proxy"  # Debian's squid package runs as proxy
        pw = pwd.getpwnam(user)
        os.makedirs(os.path.join(self.dir, "cache"))
        for p in (self.dir, os.path.join(self.dir, "cache")):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "squid.conf")
        with open(self.conf, "w") as f:
            f.write(SQUID_CONF.format(port=self.port, d=self.dir, user=user))
        subprocess.run(["squid", "-N", "-z", "-f", self.conf], check=True, capture_output=True, timeout=60)
        self.proc = subprocess.Popen(["squid", "-N", "-f", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = h.wait_for(lambda: self.listening(), timeout=30)
        if not ok:
            raise RuntimeError("squid did not start:\n" + self.cache_log())
        self.url = f"http://127.0.0.1:{self.port}"

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def access_log(self):
        try:
            return open(os.path.join(self.dir, "access.log")).read()
        except OSError:
            return ""

    def cache_log(self):
        try:
            return open(os.path.join(self.dir, "cache.log")).read()
        except OSError:
            return ""

    def close(self):
        h.stop_process(self.proc, timeout=15)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    if not shutil.which("squid"):
        h.skip("squid is not installed (tools/deps.sh installs it)")
    origin_dir = tempfile.mkdtemp(prefix="hvwg-origin-")
    os.chmod(origin_dir, 0o755)
    squid = Squid()
    origin = h.HttpServer(origin_dir)
    try:
        img = h.make_mbr_image(os.path.join(origin_dir, "s.img"), mib=8, parts="label: dos\nstart=2048, type=83\n")
        with open(img, "r+b") as f:  # 6 MiB of incompressible data: the download is as large
            f.seek(1 << 20)
            f.write(os.urandom(6 << 20))
        gz = h.gzip_file(img, img + ".gz", level=1)
        sha = h.sha512_file(gz)
        url = origin.url + "/cache/s.img.gz"
        conf = {"Fetch": {"Proxy": squid.url}}
        envs = [h.Env(conf_extra=conf), h.Env(conf_extra=conf)]
        try:
            for i, env in enumerate(envs):
                rc, res, err = env.fetch(url, "sl", sha512=sha)
                h.check(rc == 0, f"host {i + 1} fetches the image through Squid " + err.strip())
                h.check(subprocess.run(["cmp", img, os.path.join(env.images, "sl.raw")]).returncode == 0,
                        f"host {i + 1}: byte-identical")
            got = origin.requests.get("/cache/s.img.gz", [])
            h.check(len(got) == 1, f"the origin served it once: {len(got)} request(s)")
            log = squid.access_log()
            lines = [l for l in log.splitlines() if "/cache/s.img.gz" in l]
            codes = [l.split()[3].split("/")[0] for l in lines if len(l.split()) > 3]
            h.check(len(codes) == 2 and "MISS" in codes[0] and "HIT" in codes[1], f"Squid: a MISS, then a HIT: {codes}")
            h.check("through a cache (Via:" in envs[1].log() and "squid" in envs[1].log().split("through a cache (Via:")[1][:200],
                    "hvwgd logs Squid's Via header")
            h.check(not any("no-cache" in str(hd.get("Cache-Control", "")) + str(hd.get("Pragma", "")) for p, hd in origin.seen),
                    "no request asked the cache to step aside (no Cache-Control/Pragma: no-cache)")

            # a replace of the same URL through the proxy: conditional, not modified
            ino = os.stat(os.path.join(envs[0].images, "sl.raw")).st_ino
            rc, res, err = envs[0].fetch(url, "sl", replace=True)
            h.check(rc == 0 and os.stat(os.path.join(envs[0].images, "sl.raw")).st_ino == ino and
                    "is not modified (HTTP 304)" in envs[0].log(), "replace through the proxy: 304, the image kept " + err.strip())
            h.check(len(origin.requests.get("/cache/s.img.gz", [])) <= 2, "the origin sent the body once in all")
        finally:
            for env in envs:
                env.stop()
    finally:
        origin.close()
        squid.close()
        shutil.rmtree(origin_dir, ignore_errors=True)
    print("PASS test_squid")


if __name__ == "__main__":
    main()
