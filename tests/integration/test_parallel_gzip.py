"""FetchImage of gzip images the parallel decoder can split (InflateThreads=2): pigz --independent,
bgzip (BGZF), concatenated members; and the ones it cannot (plain gzip, pigz's default with
dependent blocks), a corrupt one, a truncated one. Every image is byte-identical to the raw
disk; the log says how many chunks were decoded side by side; a bad stream fails with
BadCompression and leaves nothing behind. Then InflateSpeculate=yes: the plain gzip file is
decoded side by side from deflate blocks found by trial, and pigz's default from its flush
points with markers, byte-identical; a corrupt plain file still fails with BadCompression."""
import os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def compress(cmd, src, dst):
    with open(src, "rb") as i, open(dst, "wb") as o:
        subprocess.run(cmd, stdin=i, stdout=o, check=True)
    return dst


def main():
    h.need(shutil.which("pigz") and shutil.which("bgzip"), "pigz and bgzip (tabix) are needed (tools/deps.sh installs them)")
    with h.Env(conf_extra={"Fetch": {"InflateThreads": "2"}}) as env:
        raw = h.make_data_image(os.path.join(env.src, "d.img"), 256, 64)
        # 64 MiB of random data does not compress: add text that does, so chunks inflate for real
        with open(raw, "r+b") as f:
            f.seek(100 << 20)
            text = b"".join(b"line %d of a log file with some words in it\n" % i for i in range(1500000))
            f.write(text[: 48 << 20])
        want = h.sha512_file(raw)
        files = {
            "pigzi": compress(["pigz", "-6", "--independent", "-c"], raw, raw + ".pigzi.gz"),
            "bgzf": compress(["bgzip", "-c", "-l", "6"], raw, raw + ".bgz"),
            "plain": h.gzip_file(raw, raw + ".gz"),
            "pigz": compress(["pigz", "-6", "-c"], raw, raw + ".pigz.gz"),
        }
        # concatenated members: the image in 512 KiB pieces, each gzip'd (a member is a place to
        # start only when members come at most 1 MiB of gzip apart)
        import zlib
        with open(raw, "rb") as i, open(raw + ".multi.gz", "wb") as o:
            while piece := i.read(512 << 10):
                c = zlib.compressobj(6, zlib.DEFLATED, 31)
                o.write(c.compress(piece) + c.flush())
        files["multi"] = raw + ".multi.gz"

        for name, path in files.items():
            before = len(env.log().splitlines())
            rc, res, err = env.fetch("file://" + path, name)
            h.check(rc == 0, f"{name}: imported " + err.strip())
            h.check(h.sha512_file(os.path.join(env.images, name + ".raw")) == want, f"{name}: byte-identical to the raw disk")
            line = next((l for l in env.log().splitlines()[before:] if "gzip decoded on 2 threads" in l), "")
            side = int(line.split(": ")[2].split(" chunks")[0]) if line else -1
            if name in ("pigzi", "bgzf", "multi"):
                h.check(side >= 20 and "again in order" in line and "then one thread" not in line,
                        f"{name}: decoded side by side ({line.split('job ')[-1]})")
            else:
                h.check(line != "" and "then one thread" in line, f"{name}: no independent places to start: one thread ({line.split('job ')[-1]})")

        # damage: a flipped byte in the middle of the pigz --independent file, and a cut one
        bad = shutil.copy(files["pigzi"], raw + ".bad.gz")
        with open(bad, "r+b") as f:
            f.seek(os.path.getsize(bad) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x55]))
        cut = raw + ".cut.gz"
        with open(files["bgzf"], "rb") as i, open(cut, "wb") as o:
            o.write(i.read(os.path.getsize(files["bgzf"]) - 1000))
        for name, path in (("bad", bad), ("cut", cut)):
            rc, res, err = env.fetch("file://" + path, name)
            h.check(rc != 0 and "BadCompression" in (res or {}).get("error", "") + err, f"{name}: BadCompression ({err.strip()[:160]})")
            h.check(name not in env.images_list() and not [f for f in env.store_files() if f.startswith(".tmp/")],
                    f"{name}: nothing published, no temp file left")
        keep_dir = tempfile.mkdtemp(prefix="hvwg-plain-")
        keep = shutil.copy(files["plain"], os.path.join(keep_dir, "plain.gz"))
        keep_pigz = shutil.copy(files["pigz"], os.path.join(keep_dir, "pigz.gz"))

    with h.Env(conf_extra={"Fetch": {"InflateThreads": "2", "InflateSpeculate": "yes"}}) as env:
        plain = shutil.copy(keep, os.path.join(env.src, "plain.gz"))
        before = len(env.log().splitlines())
        rc, res, err = env.fetch("file://" + plain, "spec")
        h.check(rc == 0, "plain gzip, speculative: imported " + err.strip())
        h.check(h.sha512_file(os.path.join(env.images, "spec.raw")) == want, "plain gzip, speculative: byte-identical to the raw disk")
        line = next((l for l in env.log().splitlines()[before:] if "gzip decoded on 2 threads" in l), "")
        trial = int(line.split("(")[1].split(" of them")[0]) if " of them speculatively" in line else -1
        h.check(trial >= 20 and "then one thread" not in line, f"plain gzip: decoded side by side from blocks found by trial ({line.split('job ')[-1]})")
        # pigz's default: its flush points refer back; after the first, they start with markers
        pigz = shutil.copy(keep_pigz, os.path.join(env.src, "pigz.gz"))
        before = len(env.log().splitlines())
        rc, res, err = env.fetch("file://" + pigz, "pigzdep")
        h.check(rc == 0 and h.sha512_file(os.path.join(env.images, "pigzdep.raw")) == want, "pigz default, speculative: byte-identical " + err.strip())
        line = next((l for l in env.log().splitlines()[before:] if "gzip decoded on 2 threads" in l), "")
        trial = int(line.split("(")[1].split(" of them")[0]) if " of them speculatively" in line else -1
        h.check(trial >= 20 and "then one thread" not in line, f"pigz default: decoded side by side ({line.split('job ')[-1]})")
        # a flipped byte in the text part: refused as by the sequential decoder, nothing left
        bad = shutil.copy(plain, os.path.join(env.src, "bad.gz"))
        with open(bad, "r+b") as f:
            f.seek(os.path.getsize(bad) - (1 << 20))
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x55]))
        rc, res, err = env.fetch("file://" + bad, "bad")
        h.check(rc != 0 and "BadCompression" in (res or {}).get("error", "") + err, f"bad plain gzip, speculative: BadCompression ({err.strip()[:160]})")
        h.check("bad" not in env.images_list() and not [f for f in env.store_files() if f.startswith(".tmp/")],
                "bad plain gzip: nothing published, no temp file left")
    shutil.rmtree(keep_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
