"""FetchImage over file:// on both inflate engines: round trip, sparse output, multi-member and
header flags, raw sources, name derivation, replace, RemoveImage, JobNew/JobRemoved counting."""
import gzip, json, os, shutil, subprocess, sys, threading, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def gzip_with_headers(src, dst):
    """Three members: FNAME+FCOMMENT, FEXTRA+FHCRC, plain, as Python's gzip + hand-made headers."""
    import struct, zlib
    data = open(src, "rb").read()
    thirds = [data[: len(data) // 3], data[len(data) // 3: 2 * len(data) // 3], data[2 * len(data) // 3:]]
    out = bytearray()
    for i, part in enumerate(thirds):
        flags = [8 | 16, 4 | 2, 0][i]
        hdr = bytearray(b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0\0\x03")
        if flags & 4:
            hdr += struct.pack("<H", 4) + b"XY\0\0"
        if flags & 8:
            hdr += b"part.raw\0"
        if flags & 16:
            hdr += b"comment\0"
        if flags & 2:
            hdr += struct.pack("<H", zlib.crc32(bytes(hdr)) & 0xffff)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        out += hdr + c.compress(part) + c.flush() + struct.pack("<II", zlib.crc32(part), len(part) & 0xffffffff)
    open(dst, "wb").write(out)


class Signals:
    """Counts JobNew/JobRemoved with busctl monitor."""

    def __init__(self, env):
        self.p = subprocess.Popen(["busctl", "--address=" + env.address, "--json=short", "monitor", "--match",
                                   "type='signal',interface='org.hepix.hvwg1.Manager'"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events = []
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()
        time.sleep(0.3)

    def read(self):
        for line in self.p.stdout:
            try:
                m = json.loads(line)
            except json.JSONDecodeError:
                continue
            if m.get("member") in ("JobNew", "JobRemoved"):
                self.events.append((m["member"], m["payload"]["data"]))

    def stop(self):
        time.sleep(0.3)
        self.p.terminate()
        self.p.wait()


def main():
    for engine in ("isal", "zlib"):
        print(f"== engine {engine}")
        with h.Env(conf_extra={"Fetch": {"Inflate": engine}}) as env:
            sig = Signals(env)
            img = h.make_mbr_image(os.path.join(env.src, "disk.img"), mib=64)
            gz = h.gzip_file(img, os.path.join(env.src, "disk.img.gz"))
            rc, res, err = env.fetch("file://" + gz, sha512=h.sha512_file(gz), size=os.path.getsize(gz))
            h.check(rc == 0 and res["result"] == "done", f"fetch with sha512+size: done ({err.strip()})")
            imgs = env.images_list()
            h.check(list(imgs) == ["disk"], "name derived from disk.img.gz is disk")
            name, size, alloc, created, source = imgs["disk"]
            h.check(size == 64 << 20, "virtual size 64 MiB")
            raw = os.path.join(env.images, "disk.raw")
            h.check(subprocess.run(["cmp", img, raw]).returncode == 0, "published image is byte-identical")
            h.check(alloc == h.allocated(raw) and alloc < 2 << 20, f"sparse: {alloc} bytes allocated")
            h.check(abs(created / 1e6 - time.time()) < 120 and source == "file://" + gz, "creation time and source")
            h.check(os.stat(raw).st_mode & 0o222 == 0, "published image is read-only")
            h.check(env.store_files() == ["disk.meta", "disk.raw"], "nothing else in the store")
            t, sz, parts = env.call("InspectImage", "s", "disk")
            h.check(t == "mbr" and sz == 64 << 20, "InspectImage: mbr, 64 MiB")
            h.check([(p[0], p[1], p[2], p[5]) for p in parts] == [(1, 0x83, True, "ext4"), (2, 0x82, False, "swap")],
                    f"InspectImage partitions: {parts}")

            # multi-member with every header flag
            mm = os.path.join(env.src, "multi.gz")
            gzip_with_headers(img, mm)
            rc, res, err = env.fetch("file://" + mm, "multi")
            h.check(rc == 0, f"multi-member gzip with FNAME/FCOMMENT/FEXTRA/FHCRC: done ({err.strip()})")
            h.check(subprocess.run(["cmp", img, os.path.join(env.images, "multi.raw")]).returncode == 0,
                    "multi-member decodes to the concatenation")
            # gzip -c a b > c: what gzip(1) itself makes
            cat = os.path.join(env.src, "cat.gz")
            half = os.path.join(env.src, "half")
            with open(img, "rb") as f:
                data = f.read()
            open(half + "1", "wb").write(data[: 32 << 20])
            open(half + "2", "wb").write(data[32 << 20:])
            with open(cat, "wb") as o:
                subprocess.run(["gzip", "-c", half + "1", half + "2"], stdout=o, check=True)
            rc, res, err = env.fetch("file://" + cat, "cat")
            h.check(rc == 0 and subprocess.run(["cmp", img, os.path.join(env.images, "cat.raw")]).returncode == 0,
                    "gzip -c a b decodes to a+b")

            # a raw source with compression=none
            rc, res, err = env.fetch("file://" + img, "rawsrc", raw=True)
            h.check(rc == 0 and subprocess.run(["cmp", img, os.path.join(env.images, "rawsrc.raw")]).returncode == 0,
                    "compression=none imports a raw source")

            # existing name: ImageExists; replace=true swaps
            rc, res, err = env.fetch("file://" + gz, "multi")
            h.check(rc == 1 and "already exists" in err, "existing name refused: " + err.strip())
            ino = os.stat(os.path.join(env.images, "multi.raw")).st_ino
            rc, res, err = env.fetch("file://" + gz, "multi", replace=True)
            h.check(rc == 0 and os.stat(os.path.join(env.images, "multi.raw")).st_ino != ino, "replace=true swaps the image")

            # remove
            r = env.ctl("rm", "cat")
            h.check(r.returncode == 0 and "cat" not in env.images_list(), "RemoveImage")
            time.sleep(0.3)
            h.check(not any(f.startswith("cat.") for f in env.store_files()) and
                    not any(f.startswith(".tmp/") for f in env.store_files()), "removed image's files are gone")
            r = env.ctl("rm", "cat")
            h.check(r.returncode == 1 and "no image named cat" in r.stderr, "removing again: NoSuchImage")

            # restart: the index is rebuilt from disk
            env.stop_daemon()
            env.start_daemon()
            h.check(sorted(env.images_list()) == ["disk", "multi", "rawsrc"], "images survive a restart")
            t, sz, parts = env.call("InspectImage", "s", "disk")
            h.check(len(parts) == 2 and parts[0][5] == "ext4", "inspection data survives a restart")
            sig.stop()
            news = [e for e in sig.events if e[0] == "JobNew"]
            removed = [e for e in sig.events if e[0] == "JobRemoved"]
            h.check(len(news) == len(removed) == 5, f"one JobRemoved per JobNew ({len(news)}/{len(removed)})")
            h.check(sorted(e[1][0] for e in news) == sorted(e[1][0] for e in removed), "JobRemoved ids match JobNew ids")


if __name__ == "__main__":
    main()
