#!/usr/bin/env python3
"""Regenerates the seed corpus in tests/fuzz/corpus/ from real tables made by sfdisk and real
gzip files. The corpus is checked in; run this only to refresh it."""
import gzip, os, struct, subprocess, tempfile, zlib

here = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = {
    "one-boot": "label: dos\nstart=2048, type=83, bootable\n",
    "linux-swap": "label: dos\nstart=2048, size=20M, type=83, bootable\nsize=8M, type=82\n",
    "ext05": "label: dos\nstart=2048, size=10M, type=83\nsize=40M, type=5\nsize=5M\nsize=5M\nsize=10M\nsize=10M, type=82\nsize=10M\n",
    "ext0f": "label: dos\nstart=2048, size=10M, type=83\nsize=40M, type=f\nsize=5M\nsize=5M\nsize=10M\nsize=10M\n",
    "ext85": "label: dos\nstart=2048, size=10M, type=83\nsize=40M, type=85\nsize=5M\nsize=5M\nsize=10M\nsize=10M\n",
    "lvm": "label: dos\nstart=2048, size=10M, type=83\nsize=10M, type=8e\n",
    "gpt": "label: gpt\nstart=2048, size=10M, type=L\n",
}


def mbr_seeds():
    out = os.path.join(here, "corpus/mbr")
    os.makedirs(out, exist_ok=True)
    for name, script in SCRIPTS.items():
        with tempfile.NamedTemporaryFile() as f:
            f.truncate(128 << 20)
            f.flush()
            subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", f.name], input=script, text=True,
                           check=True, capture_output=True)
            rec = struct.pack("<Q", 128 << 20)
            with open(f.name, "rb") as img:
                for lba in range(0, (128 << 20) // 512):
                    img.seek(lba * 512)
                    s = img.read(512)
                    if s[510:512] == b"\x55\xaa" or (lba < 40 and any(s)):
                        rec += struct.pack("<Q", lba) + s
            open(os.path.join(out, name), "wb").write(rec)


def gzip_seeds():
    out = os.path.join(here, "corpus/gzip")
    os.makedirs(out, exist_ok=True)
    text = b"".join(b"line %d of a small image\n" % i for i in range(400))
    seeds = {
        "plain": gzip.compress(text, mtime=0),
        "two-members": gzip.compress(text[:3000], mtime=0) + gzip.compress(text[3000:], mtime=0),
        "empty-member": gzip.compress(b"", mtime=0),
        "zeros": gzip.compress(bytes(20000), mtime=0),
    }
    hdr = bytearray(b"\x1f\x8b\x08\x1e\0\0\0\0\0\x03") + struct.pack("<H", 4) + b"AB\0\0" + b"name\0" + b"comment\0"
    hdr[3] |= 2
    hdr += struct.pack("<H", zlib.crc32(bytes(hdr)) & 0xffff)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    seeds["all-flags"] = bytes(hdr) + c.compress(text) + c.flush() + struct.pack("<II", zlib.crc32(text), len(text))
    for name, data in seeds.items():
        open(os.path.join(out, name), "wb").write(b"\x07" + data)


def dspec_seeds():
    """Raw deflate with several blocks (flushes between pieces, a stored stretch); the first
    byte picks where the speculative decoder starts (0x80: the block the finder finds)."""
    out = os.path.join(here, "corpus/dspec")
    os.makedirs(out, exist_ok=True)
    text = b"".join(b"line %d of a small image, word %d\n" % (i, i * 7919 % 1000) for i in range(1500))
    rnd = bytes((i * 2654435761 >> 13) & 0xff for i in range(6000))
    for level in (1, 6, 9):
        c = zlib.compressobj(level, zlib.DEFLATED, -15)
        raw = b""
        for k in range(0, len(text), 9000):
            raw += c.compress(text[k:k + 9000]) + c.flush(zlib.Z_SYNC_FLUSH if k % 18000 else zlib.Z_FULL_FLUSH)
            if k == 18000:
                raw += c.compress(rnd) + c.flush(zlib.Z_SYNC_FLUSH)
        raw += c.flush()
        for first in (0x80, 0x00, 0x03):
            open(os.path.join(out, "level%d-%02x" % (level, first)), "wb").write(bytes([first]) + raw)


def conf_seeds():
    out = os.path.join(here, "corpus/conf")
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "default.conf"), "wb").write(open(os.path.join(here, "../../conf/hvwgd.conf"), "rb").read())
    open(os.path.join(out, "meta"), "wb").write(b"source=file:///x.gz\nsha512=ab\nsize=4096\ntable=mbr\npartition=1 131 1 0 1048576 4096 ext4\n")
    open(os.path.join(out, "size"), "wb").write(b"64G")


def context_seeds():
    """fuzz_context: entries of (kind, key NUL, 2-byte length, value); kinds 0 user_data,
    1 network_config, 2 meta_data, 3 context file, 4 context variable."""
    out = os.path.join(here, "corpus/context")
    os.makedirs(out, exist_ok=True)

    def entry(kind, key, val):
        return bytes([kind]) + key + b"\0" + struct.pack("<H", len(val)) + val
    seeds = {
        "hepix": entry(3, b"prolog.sh", b"#!/bin/sh\necho hi\n") + entry(4, b"MARK", b"it's $(x)") + entry(2, b"role", b"worker"),
        "cloud-init": entry(0, b"", b"#cloud-config\nruncmd:\n - echo hi\n") + entry(1, b"", b"version: 2\n") +
        entry(2, b"local-hostname", b"n\"7\n"),
        "bad-names": entry(3, b"../x", b"y") + entry(3, b".hidden", b"") + entry(4, b"lower", b"v"),
        "dups": entry(3, b"a", b"1") + entry(3, b"a", b"2"),
        "both-context-sh": entry(3, b"context.sh", b"A=1") + entry(4, b"A", b"1"),
    }
    for k, v in seeds.items():
        open(os.path.join(out, k), "wb").write(v)


if __name__ == "__main__":
    mbr_seeds()
    gzip_seeds()
    dspec_seeds()
    conf_seeds()
    context_seeds()
