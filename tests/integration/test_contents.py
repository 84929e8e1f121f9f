"""Looking inside images without mounting them: images built here (sfdisk + `mke2fs -d` with
crafted trees at the partition's offset, no loop devices) are fetched, and InspectImageContents,
`hvwgctl inspect --lint` and `hvwgd --lint FILE` give the documented answers: a Debian-like
image (OS, kernels with initramfs, grub with a serial console, LABEL=scratch with nofail, a
unit ordered after /scratch: no error, no warning); an AlmaLinux-9-like one with every finding
(/dev/sda in fstab, no scratch entry, no serial console, a unit using /scratch unordered, a
kernel without initramfs, a swap partition fstab does not use); one without os-release and a
scratch entry without nofail; symlink loops and symlinks pointing out of the filesystem (they
stay inside it); an os-release of 10 MiB (read capped); a corrupted superblock; an ext4 with an
unsupported feature; an XFS partition (reported, not read). No crash, bounded time."""
import json, os, shutil, struct, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

HVWGD = os.environ.get("HVWGD", os.path.join(h.SRC, "build/hvwgd"))


def tree(root, files, links=()):
    for path, text in files.items():
        p = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
    for path, target in links:
        p = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.symlink(target, p)


def image(path, root, swap=True, second=None, mkfs=()):
    """MBR: partition 1 ext4 (40 MiB) from root, partition 2 swap (20 MiB) or second ("xfs":
    320 MiB, the least mkfs.xfs makes); sparse."""
    p2 = 320 if second == "xfs" else 20
    with open(path, "wb") as f:
        f.truncate((44 + p2) << 20)
    kind = "82" if swap else "83"
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", path], check=True, capture_output=True,
                   input=f"label: dos\nstart=2048, size=40M, type=83, bootable\nsize={p2}M, type={kind}\n", text=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", *mkfs, "-d", root, "-E", f"offset={2048 * 512}", path, "40M"], check=True,
                   capture_output=True)
    off2 = (2048 + 40 * 2048) * 512
    part = path + ".p2"
    with open(part, "wb") as f:
        f.truncate(p2 << 20)
    if swap:
        subprocess.run(["mkswap", part], check=True, capture_output=True)
    elif second == "xfs":
        subprocess.run(["mkfs.xfs", "-q", "-f", part], check=True, capture_output=True)
    with open(part, "rb") as s, open(path, "r+b") as f:
        while True:  # only the blocks with data: the image stays sparse
            pos = s.tell()
            b = s.read(1 << 20)
            if not b:
                break
            if b.count(0) != len(b):
                f.seek(off2 + pos)
                f.write(b)
    os.unlink(part)
    return path


DEBIAN = {
    "/etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    "/etc/hostname": "worker\n",
    "/etc/fstab": "# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=1234 / ext4 errors=remount-ro 0 1\n"
                  "LABEL=scratch /scratch ext4 defaults,nofail 0 2\n/dev/vdb2 none swap sw 0 0\n",
    "/boot/vmlinuz-6.1.0-13-cloud-amd64": "kernel",
    "/boot/initrd.img-6.1.0-13-cloud-amd64": "initrd",
    "/boot/grub/grub.cfg": "menuentry 'Debian' {\n\tlinux /boot/vmlinuz-6.1.0-13-cloud-amd64 root=UUID=1234 ro console=tty0 console=ttyS0,115200\n}\n",
    "/lib/systemd/system/payload.service": "[Unit]\nRequiresMountsFor=/scratch\n[Service]\nExecStart=/usr/bin/run /scratch/job\n",
}

ALMA = {
    "/etc/os-release": 'NAME="AlmaLinux"\nVERSION="9.3 (Shamrock Pampas Cat)"\nID="almalinux"\nVERSION_ID="9.3"\n'
                      'PRETTY_NAME="AlmaLinux 9.3 (Shamrock Pampas Cat)"\n',
    "/etc/fstab": "/dev/sda1 / xfs defaults 0 0\n",
    "/boot/vmlinuz-5.14.0-362.el9.x86_64": "kernel",
    "/boot/grub2/grub.cfg": "menuentry 'Alma' {\n linux /vmlinuz-5.14.0-362.el9.x86_64 root=/dev/sda1 ro quiet\n}\n",
    "/usr/lib/systemd/system/job.service": "[Service]\nWorkingDirectory=/scratch\nExecStart=/bin/true\n",
}


def inspect(env, name):
    return {k: v["data"] for k, v in env.call("InspectImageContents", "s", name)[0].items()}


def codes(c):
    return {f[1] for f in c["findings"] if f[0] != "note"}


def main():
    with h.Env() as env:
        t0 = time.time()
        src = env.src

        def build(name, files, links=(), **kw):
            root = os.path.join(src, name + ".tree")
            tree(root, files, links)
            img = image(os.path.join(src, name + ".img"), root, **kw)
            rc, res, err = env.fetch("file://" + img, name, raw=True)
            assert rc == 0, err
            return img

        deb = build("deb", DEBIAN, links=[("/etc/systemd/system/multi-user.target.wants/payload.service",
                                           "/lib/systemd/system/payload.service")])
        c = inspect(env, "deb")
        h.check(c["os_id"] == "debian" and c["os_version_id"] == "12" and c["os_pretty_name"] == "Debian GNU/Linux 12 (bookworm)" and
                c["hostname"] == "worker" and c["root"] == 1, f"Debian-like: OS, hostname, root partition 1 ({c['os_pretty_name']})")
        h.check(c["kernels"] == ["6.1.0-13-cloud-amd64"] and c["bootloader"] == "grub", "its kernel and bootloader")
        h.check(["LABEL=scratch", "/scratch", "ext4", "defaults,nofail"] in c["fstab"] and c["scratch"].startswith("LABEL=scratch on /scratch"),
                "fstab and how it mounts the scratch disk: " + c["scratch"])
        h.check(codes(c) == set(), f"no error, no warning: {c['findings']}")
        r = env.ctl("inspect", "--lint", "deb")
        h.check(r.returncode == 0 and "Debian GNU/Linux 12" in r.stdout, "hvwgctl inspect --lint: exit 0 " + r.stdout)
        r = env.ctl("images")
        h.check(re.search(r"^deb\s.*Debian GNU/Linux 12", r.stdout, re.M) is not None, "hvwgctl images shows the OS")
        meta = open(os.path.join(env.images, "deb.meta")).read()
        h.check("contents={" in meta, "the contents are stored in the image's metadata")

        alma = build("alma", ALMA, links=[("/etc/systemd/system/multi-user.target.wants/job.service",
                                           "/usr/lib/systemd/system/job.service")])
        c = inspect(env, "alma")
        want = {"fstab-device-name", "no-scratch-entry", "no-serial-console", "unit-scratch-order", "no-initramfs", "swap-not-in-fstab"}
        h.check(c["os_id"] == "almalinux" and c["os_version_id"] == "9.3" and codes(c) == want,
                f"AlmaLinux-like: every finding ({sorted(codes(c))})")
        r = env.ctl("inspect", "--lint", "alma")
        h.check(r.returncode == 1 and "error   fstab-device-name" in r.stdout, "inspect --lint: exit 1 on an error " + r.stdout)
        r = subprocess.run([HVWGD, "--lint", alma], capture_output=True, text=True)
        h.check(r.returncode == 1 and "fstab-device-name" in r.stdout and "AlmaLinux 9.3" in r.stdout,
                "hvwgd --lint FILE, no daemon: the same findings")
        gz = h.gzip_file(deb, deb + ".gz")
        r = subprocess.run([HVWGD, "--lint", gz], capture_output=True, text=True)
        h.check(r.returncode == 0 and "Debian GNU/Linux 12" in r.stdout, "hvwgd --lint on a gzip image " + r.stdout + r.stderr)

        build("noos", {"/etc/fstab": "LABEL=scratch /scratch ext4 defaults 0 2\n", "/boot/vmlinuz-1": "k",
                       "/boot/initrd.img-1": "i", "/boot/extlinux/extlinux.conf": "APPEND console=ttyS0\n"}, swap=False)
        c = inspect(env, "noos")
        h.check(c["os_id"] == "" and "no-os-release" in {f[1] for f in c["findings"]} and codes(c) == {"scratch-without-nofail"} and
                c["bootloader"] == "extlinux", f"no os-release: unknown OS, scratch without nofail ({sorted(codes(c))})")

        # symlinks: a loop, and links that point out of the filesystem stay inside it
        build("links", {"/boot/vmlinuz-2": "k"}, links=[("/etc/os-release", "/etc/a"), ("/etc/a", "/etc/b"), ("/etc/b", "/etc/a"),
                                                        ("/etc/fstab", "../../../../../../proc/self/mounts"),
                                                        ("/etc/hostname", "/../../../../etc/hostname")])
        c = inspect(env, "links")
        h.check(c["os_id"] == "" and c["fstab"] == [] and c["hostname"] == "" and "no /etc/fstab" in c["scratch"],
                "a symlink loop and symlinks out of the filesystem: nothing read from the host")

        big = {"/etc/os-release": b"ID=big\nVERSION_ID=1\nPRETTY_NAME=\"Big \xff\x7f\xc3\"\n" + b"X=" + b"y" * (10 << 20) + b"\n",
               "/boot/vmlinuz-3": "k"}
        t = time.time()
        build("big", big)
        c = inspect(env, "big")
        h.check(c["os_id"] == "big" and c["os_pretty_name"] == "Big ? ?",
                f"an os-release of 10 MiB with bytes that are not UTF-8: read capped, parsed, made printable ({c['os_pretty_name']!r})")
        import resource
        r = subprocess.run([HVWGD, "--lint", os.path.join(src, "big.img")], capture_output=True, text=True)
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        h.check("ID=big" in r.stdout and rss < 64 * 1024, f"hvwgd --lint on it: bounded memory (largest child so far {rss // 1024} MiB)")

        img = os.path.join(src, "deb.img")
        bad = os.path.join(src, "badsb.img")
        shutil.copy(img, bad)
        with open(bad, "r+b") as f:  # the ext4 magic of partition 1's superblock
            f.seek(2048 * 512 + 1024 + 0x38)
            f.write(b"\0\0")
        rc, res, err = env.fetch("file://" + bad, "badsb", raw=True)
        c = inspect(env, "badsb")
        h.check(rc == 0 and c["root"] == 0 and "root-not-found" in codes(c), f"a corrupted superblock: not read, no crash ({err.strip()})")

        # without metadata_csum, so that the superblock's checksum does not hide the feature from e2fsck
        feat = image(os.path.join(src, "feat.img"), os.path.join(src, "deb.tree"), mkfs=("-O", "^metadata_csum"))
        with open(feat, "r+b") as f:  # s_feature_incompat |= a bit no ext4 knows
            f.seek(2048 * 512 + 1024 + 0x60)
            v = struct.unpack("<I", f.read(4))[0]
            f.seek(2048 * 512 + 1024 + 0x60)
            f.write(struct.pack("<I", v | 0x80000000))
        p1 = feat + ".p1"  # e2fsck on the partition alone: it refuses the feature too
        with open(feat, "rb") as f, open(p1, "wb") as o:
            f.seek(2048 * 512)
            o.write(f.read(40 << 20))
        e2 = subprocess.run(["e2fsck", "-n", p1], capture_output=True, text=True)
        os.unlink(p1)
        h.check(e2.returncode != 0 and "unsupported feature" in (e2.stdout + e2.stderr), "(e2fsck refuses it: " +
                (e2.stdout + e2.stderr).strip().splitlines()[-1] + ")")
        env.fetch("file://" + feat, "feat", raw=True)
        c = inspect(env, "feat")
        notes = [f[2] for f in c["findings"] if f[1] == "partition-not-read"]
        h.check(c["root"] == 0 and any("feature" in n for n in notes), f"an unsupported ext4 feature: reported, not read ({notes})")

        root = os.path.join(src, "xfs.tree")
        tree(root, DEBIAN)
        xfs = image(os.path.join(src, "xfs.img"), root, swap=False, second="xfs")
        r = subprocess.run([HVWGD, "--lint", xfs], capture_output=True, text=True)
        h.check(r.returncode == 0 and "Debian GNU/Linux 12" in r.stdout and
                re.search(r"partition-not-read\s+partition 2 \(xfs\): contents not read", r.stdout) is not None,
                "an XFS partition (hvwgd --lint): named, contents not read " + r.stdout)
        h.check(time.time() - t0 < 120, "bounded time")
    print("PASS test_contents")


import re  # noqa: E402

if __name__ == "__main__":
    main()
