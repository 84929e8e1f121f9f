"""Scratch disks formatted in-process (hvwgd --format-scratch runs the same code CreateMachine
uses): e2fsck -fn clean, label, UUID, block/inode size, feature list, allocated size, ext3/ext2,
fallocate mode and its NoSpace, bad sizes, a loop mount with real I/O."""
import os, re, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

EXT4 = "has_journal ext_attr resize_inode dir_index filetype extent flex_bg sparse_super large_file huge_file uninit_bg dir_nlink extra_isize"
EXT4_64 = "has_journal ext_attr dir_index filetype extent 64bit flex_bg sparse_super large_file huge_file uninit_bg dir_nlink extra_isize"
EXT3 = "has_journal ext_attr resize_inode dir_index filetype sparse_super large_file"
EXT2 = "ext_attr resize_inode dir_index filetype sparse_super large_file"


def fmt(path, size, *extra):
    return subprocess.run([h.HVWGD, "--format-scratch", path, size, *extra], capture_output=True, text=True, timeout=300)


def dumpe2fs(path):
    out = subprocess.run(["dumpe2fs", "-h", path], capture_output=True, text=True).stdout
    return dict((m.group(1).strip(), m.group(2).strip()) for m in re.finditer(r"^([^:\n]+):\s*(.*)$", out, re.M))


def check_fs(path, size, features, label="scratch", max_alloc=None, uuid=None):
    r = subprocess.run(["e2fsck", "-fn", path], capture_output=True, text=True, timeout=600)
    h.check(r.returncode == 0, f"{os.path.basename(path)}: e2fsck -fn clean" + ("" if r.returncode == 0 else ": " + r.stdout[-500:]))
    d = dumpe2fs(path)
    h.check(d.get("Filesystem volume name") == label, f"  label {label}")
    h.check(d.get("Filesystem features") == features, f"  features: {d.get('Filesystem features')}")
    h.check(d.get("Block size") == "4096" and d.get("Inode size") == "256", "  4 KiB blocks, 256-byte inodes")
    h.check(int(d["Block count"]) * 4096 == size, "  size = requested")
    if uuid:
        h.check(d.get("Filesystem UUID") == uuid, f"  UUID {uuid} as reported")
    if max_alloc is not None:
        a = h.allocated(path)
        h.check(a <= max_alloc, f"  allocated {a / 2**20:.1f} MiB <= {max_alloc / 2**20:.0f} MiB")


def main():
    tmp = tempfile.mkdtemp(prefix="hvwg-scratch-")
    try:
        for size, max_alloc in (("1G", 8 << 20), ("20G", 8 << 20), ("200G", 16 << 20), ("16383G", 200 << 20)):
            p = os.path.join(tmp, f"s{size}.img")
            t = time.time()
            r = fmt(p, size)
            h.check(r.returncode == 0, f"format {size} in {time.time() - t:.3f}s {r.stderr.strip()}")
            uuid = r.stdout.strip()
            h.check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid) is not None,
                    f"  fresh random UUID {uuid}")
            nbytes = int(size[:-1]) << 30
            check_fs(p, nbytes, EXT4, max_alloc=max_alloc, uuid=uuid)
            h.check(dumpe2fs(p).get("Reserved block count") == "0", "  no root reserve")
            os.unlink(p)
        # two formats never share a UUID
        a, b = os.path.join(tmp, "a.img"), os.path.join(tmp, "b.img")
        ua, ub = fmt(a, "1G").stdout.strip(), fmt(b, "1G").stdout.strip()
        h.check(ua and ub and ua != ua.upper() and ua != ub, "each scratch disk gets its own UUID")
        for f in (a, b):
            os.unlink(f)

        # 16 TiB needs 64bit and a filesystem that takes a 16 TiB file: a tmpfs
        big = tempfile.mkdtemp(prefix="hvwg-scratch-big-")
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", big], capture_output=True).returncode == 0:
            try:
                p = os.path.join(big, "s16T.img")
                r = fmt(p, "16T")
                h.check(r.returncode == 0, "format 16 TiB " + r.stderr.strip())
                check_fs(p, 16 << 40, EXT4_64, max_alloc=300 << 20)
            finally:
                subprocess.run(["umount", "-l", big])
        else:
            print("SKIP part: cannot mount a tmpfs for the 16 TiB case (needs root)")
        os.rmdir(big)

        for fs, feats in (("ext3", EXT3), ("ext2", EXT2)):
            p = os.path.join(tmp, fs + ".img")
            r = fmt(p, "2G", "--scratch-fs=" + fs)
            h.check(r.returncode == 0, f"format {fs} " + r.stderr.strip())
            check_fs(p, 2 << 30, feats)
            os.unlink(p)

        # fallocate: all blocks reserved up front
        p = os.path.join(tmp, "falloc.img")
        r = fmt(p, "1G", "--scratch-alloc=fallocate")
        h.check(r.returncode == 0 and h.allocated(p) >= (1 << 30), f"fallocate: {h.allocated(p) >> 20} MiB allocated of 1024")
        check_fs(p, 1 << 30, EXT4)
        os.unlink(p)
        free = shutil.disk_usage(tmp).free
        r = fmt(os.path.join(tmp, "huge.img"), f"{(free >> 30) + 100}G", "--scratch-alloc=fallocate")
        h.check(r.returncode == 1 and "not enough space" in r.stderr and not os.path.exists(os.path.join(tmp, "huge.img")),
                "fallocate beyond free space: NoSpace before anything is written: " + r.stderr.strip())

        # bad sizes
        for size, words in (("0", "below the minimum"), ("1M", "below the minimum"), ("lots", "invalid size"),
                            ("65T", "MaxScratchSize")):
            r = fmt(os.path.join(tmp, "bad.img"), size)
            h.check(r.returncode != 0 and words in r.stderr and not os.path.exists(os.path.join(tmp, "bad.img")),
                    f"size {size}: {r.stderr.strip()}")
        r = fmt(os.path.join(tmp, "bad.img"), "1G", "--scratch-fs=xfs")
        h.check(r.returncode == 1 and "unknown scratch filesystem" in r.stderr, "unknown filesystem refused")
        open(os.path.join(tmp, "exists.img"), "w").write("keep me")
        r = fmt(os.path.join(tmp, "exists.img"), "1G")
        h.check(r.returncode == 1 and open(os.path.join(tmp, "exists.img")).read() == "keep me",
                "an existing file is never overwritten")

        # mount it and do real I/O (root, loop devices)
        p = os.path.join(tmp, "mnt.img")
        fmt(p, "1G")
        mnt = os.path.join(tmp, "mnt")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-o", "loop", p, mnt], capture_output=True, text=True)
        if r.returncode != 0:
            print("SKIP part: cannot loop-mount here: " + r.stderr.strip())
        else:
            try:
                data = os.urandom(1 << 20)
                with open(os.path.join(mnt, "big"), "wb") as f:
                    for _ in range(100):
                        f.write(data)
                subprocess.run(["sync"])
                h.check(os.path.getsize(os.path.join(mnt, "big")) == 100 << 20, "wrote 100 MiB on the mounted scratch disk")
                with open(os.path.join(mnt, "big"), "rb") as f:
                    h.check(all(f.read(1 << 20) == data for _ in range(100)), "read the 100 MiB back")
            finally:
                subprocess.run(["umount", mnt])
            r = subprocess.run(["e2fsck", "-fn", p], capture_output=True, text=True)
            h.check(r.returncode == 0, "e2fsck -fn clean after use")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
