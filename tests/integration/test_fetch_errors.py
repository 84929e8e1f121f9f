"""Every bad input to FetchImage gets its own error, a message a person can act on, and leaves
ImageRoot exactly as it was."""
import os, subprocess, sys
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

E = "org.hepix.hvwg1.Error."


def main():
    with h.Env(conf_extra={"Storage": {"MaxImageSize": "256M"}}) as env:
        img = h.make_mbr_image(os.path.join(env.src, "good.img"), mib=64)
        gz = h.gzip_file(img, os.path.join(env.src, "good.img.gz"))
        data = open(gz, "rb").read()
        sha = h.sha512_file(gz)
        rc, res, err = env.fetch("file://" + gz, "keep")  # one image already there: it must survive all of this
        h.check(rc == 0, "a first image")
        before = env.store_files()

        def src(name, content):
            p = os.path.join(env.src, name)
            with open(p, "wb") as f:
                f.write(content)
            return "file://" + p

        def job_fails(uri, error, words, name="bad", **opts):
            rc, res, err = env.fetch(uri, name, **opts)
            ok = rc == 1 and res and res["result"] == "failed" and res["error_name"] == E + error
            msg = res["error_message"] if res else err
            h.check(ok and all(w in msg for w in words), f"{error}: {msg}")
            h.check(env.store_files() == before, f"  store unchanged after {error}")

        def call_fails(uri, error, words, name="bad", **opts):
            args = ["--verbose", "fetch", uri] + ([name] if name is not None else [])
            for k, v in opts.items():
                args.append(f"--{k}" + ("" if v is True else f"={v}"))
            r = env.ctl(*args)
            # InvalidArgs is a usage error: exit 2, whoever caught it
            h.check(r.returncode == (2 if error == "InvalidArgs" else 1 if error != "AccessDenied" else 4) and error in r.stderr and
                    all(w in r.stderr for w in words),
                    f"{error} at call time: {r.stderr.strip()}")
            h.check(env.store_files() == before, f"  store unchanged after {error}")

        job_fails("file://" + gz, "ChecksumMismatch", ["expected sha512 " + "0" * 128, "got " + sha], sha512="0" * 128)
        job_fails("file://" + gz, "SizeMismatch", ["expected 12345 bytes"], size=12345)
        job_fails("file://" + gz, "SizeMismatch", [f"expected {len(data) + 10} bytes", f"got {len(data)}"], size=len(data) + 10)
        job_fails(src("trunc.gz", data[: len(data) // 2]), "BadCompression", ["end of input", "offset"])
        job_fails(src("trunc2.gz", data[:-3]), "BadCompression", ["end of input"])
        bad_crc = bytearray(data)
        bad_crc[-8] ^= 0xff
        job_fails(src("crc.gz", bytes(bad_crc)), "BadCompression", ["member 1", "offset"])
        job_fails(src("garbage.gz", data + b"GARBAGE"), "BadCompression", ["trailing garbage", f"offset {len(data)}"])
        job_fails(src("notgzip.gz", b"this is not gzip at all" * 100), "BadCompression", ["not gzip", "offset 0"])
        job_fails(src("empty.gz", b""), "BadCompression", ["empty"])
        # gzip bomb: 2 GiB of zeros in ~2 MB; MaxImageSize is 256M
        bomb = os.path.join(env.src, "bomb.gz")
        with open(bomb, "wb") as o:
            p1 = subprocess.Popen(["head", "-c", str(2 << 30), "/dev/zero"], stdout=subprocess.PIPE)
            subprocess.run(["gzip", "-1"], stdin=p1.stdout, stdout=o, check=True)
            p1.wait()
        job_fails("file://" + bomb, "ImageTooLarge", ["256.0 MiB", str(256 << 20)])
        job_fails("file://" + gz, "ImageTooLarge", [str(32 << 20)], **{"max-size": "32M"})
        # partition-table rules after decompression
        lvm = os.path.join(env.src, "lvm.img")
        h.make_mbr_image(lvm, mib=16, parts="label: dos\nstart=2048, size=4M, type=83\nsize=4M, type=8e\n")
        job_fails("file://" + h.gzip_file(lvm, lvm + ".gz"), "LvmNotAllowed", ["partition 2", "0x8e"])
        gpt = os.path.join(env.src, "gpt.img")
        h.make_mbr_image(gpt, mib=16, parts="label: gpt\nstart=2048, size=4M, type=L\n")
        job_fails("file://" + h.gzip_file(gpt, gpt + ".gz"), "BadPartitionTable", ["GPT", "0xEE"])
        fsimg = os.path.join(env.src, "fs.img")
        with open(fsimg, "wb") as f:
            f.truncate(16 << 20)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", fsimg], check=True)
        job_fails("file://" + h.gzip_file(fsimg, fsimg + ".gz"), "BadPartitionTable", ["no partition table", "whole-disk ext4"])
        odd = src("odd.img", open(img, "rb").read()[: (1 << 20) + 100])
        rc, res, err = env.fetch(odd, "bad", raw=True)
        h.check(rc == 1 and res["error_name"] == E + "BadPartitionTable" and "multiple of 512" in res["error_message"],
                "raw source of an odd size: BadPartitionTable")

        # sources
        outside = "/tmp/hvwg-outside-%d.gz" % os.getpid()
        open(outside, "wb").write(data)
        try:
            call_fails("file://" + outside, "SourceNotAllowed", ["not under an allowed source directory"])
            link = os.path.join(env.src, "escape.gz")
            os.symlink(outside, link)
            call_fails("file://" + link, "SourceNotAllowed", ["outside the allowed source directory"])
            call_fails("file://" + env.src + "/../" + os.path.basename(env.tmp) + "/../../" + outside.lstrip("/"),
                       "SourceNotAllowed", [])
            os.symlink("good.img.gz", os.path.join(env.src, "inside.gz"))
            rc, res, err = env.fetch("file://" + env.src + "/inside.gz", "viainside")
            h.check(rc == 0, "a symlink that stays inside the allowed directory is fine")
            env.ctl("rm", "viainside")
            # RemoveImage renames at once and deletes on a thread: wait for .tmp to be empty again
            # (comparing at once made this test flaky on a loaded machine)
            h.check(h.wait_for(lambda: env.store_files() == before, 10), "  the removed image is gone from the store")
        finally:
            os.unlink(outside)
        call_fails(gz, "InvalidArgs", ["is a path, not a URI", "file://"])
        call_fails("ftp://example.org/x.gz", "InvalidArgs", ["unsupported source"])
        call_fails("file://" + env.src + "/missing.gz", "FetchFailed", ["No such file"])
        # names
        for n in ("../x", "a/b", "a" * 65, ".hidden"):
            call_fails("file://" + gz, "InvalidArgs", ["invalid image name"], name=n)
        call_fails(src(".gz", data), "InvalidArgs", ["cannot derive a valid image name"], name=None)
        call_fails("file://" + gz, "ImageExists", ["already exists"], name="keep")
        # bad option values from the client
        r = env.ctl("fetch", "file://" + gz, "x", "--size=lots")
        h.check(r.returncode == 2 and "invalid --size" in r.stderr, "hvwgctl: bad size string is a usage error")
        h.check(env.store_files() == before, "store exactly as before after all refusals")
        h.check(sorted(env.images_list()) == ["keep"], "only the first image is listed")


if __name__ == "__main__":
    main()
