"""Hostile callers and sources (the findings of the independent attack on 83fe70e), one
regression check each:
1. a FIFO (or a queued job's file swapped for one) never stalls the loop, a job or SIGTERM;
2. downloads are bounded: MaxDownloadSize, LowSpeedLimit, MaxDownloadTimeSec, the running jobs
   of one user, the length of the queue;
3. credentials in a source URL appear nowhere but in the caller's own call;
4. control characters in a URI are refused, and metadata that was tampered with is not trusted;
5. LVM behind a 0x83 type byte is refused (LUKS is reported, and allowed);
7. job ids do not repeat across restarts, images are 0440 root:hvwg, a ChecksumMismatch does not
   reveal the digest of a file the caller may not read, redirects may not lead to this host's
   own services (checked in a private network namespace) nor from https to http.
(6, a logical partition over the next EBR, is a unit test: tests/unit/test_mbr.c.)"""
import grp, json, os, re, signal, stat, statistics, subprocess, sys, threading, time, zlib
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

E = "org.hepix.hvwg1.Error."
SECRETS = ("S3cr3tT0ken", "Qu3rySecret")


def good_image(env, name="web"):
    img = h.make_mbr_image(os.path.join(env.src, name + ".img"), mib=64)
    return img, h.gzip_file(img, os.path.join(env.src, name + ".img.gz"))


def call_fetch(env, uri, name, user=None, opts=()):
    """FetchImage through busctl; returns the CompletedProcess (json data on stdout)."""
    args = ["--json=short", "call", h.BUS, h.OBJ, h.MGR, "FetchImage", "ssa{sv}", uri, name, str(len(opts) // 3), *opts]
    return env.busctl(*args, user=user, check=False, timeout=30)


def timed_fetch(env, uri, name):
    """A fetch that is expected to fail: (exit code, error name, message, seconds taken)."""
    t = time.monotonic()
    rc, res, err = env.fetch(uri, name)
    return rc, (res or {}).get("error_name", ""), (res or {}).get("error_message", err), time.monotonic() - t


def job_phase(env, jid):
    for j in env.call("ListJobs")[0]:
        if j[0] == jid:
            return j[3]
    return None


def wait_job_gone(env, jid, timeout=60):
    return h.wait_for(lambda: job_phase(env, jid) is None, timeout)


def cancel_all(env):
    for j in env.call("ListJobs")[0]:
        env.call("CancelJob", "u", j[0], check=False)
    h.wait_for(lambda: not env.call("ListJobs")[0], 30)


def list_images_ms(env):
    t = time.monotonic()
    r = env.busctl("call", h.BUS, h.OBJ, h.MGR, "ListImages", check=False, timeout=5)
    assert r.returncode == 0, r.stderr
    return (time.monotonic() - t) * 1000


def fifo_tests():
    print("== 1. FIFOs")
    with h.Env(conf_extra={"Fetch": {"MaxConcurrent": "1"}}) as env:
        img, gz = good_image(env)
        fifo = os.path.join(env.src, "pipe.gz")
        os.mkfifo(fifo)
        res = {}

        def fetch_fifo():
            res["r"] = call_fetch(env, "file://" + fifo, "pipe")

        t = threading.Thread(target=fetch_fifo)
        t.start()
        lat = [list_images_ms(env) for _ in range(10)]
        t.join(30)
        h.check(not t.is_alive(), "FetchImage of a FIFO returns")
        r = res["r"]
        h.check(r.returncode != 0 and "not a regular file" in r.stderr, "  refused: " + r.stderr.strip())
        h.check(statistics.median(lat) < 100, f"  ListImages meanwhile: median {statistics.median(lat):.1f} ms, max {max(lat):.1f} ms")

        # the swapped-file variant: queued behind a slow job, its file becomes a FIFO
        srv = h.HttpServer(env.src)
        try:
            r = env.ctl("--no-wait", "fetch", srv.url + "/slow/web.img.gz?bps=40000", "slow")
            slow = int(r.stdout.split()[0])
            h.wait_for(lambda: job_phase(env, slow) == "download", 10)
            swap = os.path.join(env.src, "swap.gz")
            with open(gz, "rb") as a, open(swap, "wb") as b:
                b.write(a.read())
            r = env.ctl("--no-wait", "fetch", "file://" + swap, "swapped")
            h.check(r.returncode == 0, "a file:// job queued behind a slow one: " + r.stdout.strip() + r.stderr.strip())
            queued = int(r.stdout.split()[0])
            h.check(job_phase(env, queued) == "queued", "  it is queued")
            fifo2 = os.path.join(env.src, "fifo2")
            os.mkfifo(fifo2)
            os.rename(fifo2, swap)  # the path is a FIFO now
            env.call("CancelJob", "u", slow)
            h.check(wait_job_gone(env, queued, 30), "  the queued job ends (it reads the file it was given, not the FIFO)")
            h.check(f"job {queued} (fetch swapped) done" in env.log(), "  and is done")
            h.check(h.sha512_file(os.path.join(env.images, "swapped.raw")) == h.sha512_file(img), "  with the original contents")
            h.check(max(list_images_ms(env) for _ in range(5)) < 1000, "  the loop answered throughout")
        finally:
            srv.close()

        # SIGTERM while a FIFO fetch is attempted
        t = threading.Thread(target=fetch_fifo)
        t.start()
        time.sleep(0.05)
        start = time.monotonic()
        env.daemon.send_signal(signal.SIGTERM)
        try:
            env.daemon.wait(10)
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - start
        t.join(30)
        h.check(env.daemon.poll() is not None and took < 6, f"SIGTERM stops hvwgd within its limit ({took:.2f} s)")
        env.daemon = None


def bound_tests():
    print("== 2. bounds")
    conf = {"Storage": {"MaxImageSize": "16M"}, "Fetch": {"LowSpeedLimit": "1K", "LowSpeedTimeSec": "3", "StallTimeoutSec": "30"}}
    with h.Env(conf_extra=conf) as env:
        good_image(env)
        srv = h.HttpServer(env.src)
        try:
            rc, name, msg, took = timed_fetch(env, srv.url + "/endless", "endless")
            h.check(rc == 1 and name == E + "ImageTooLarge" and "MaxDownloadSize" in msg,
                    f"an endless stream of empty gzip members stops at MaxDownloadSize: {msg}")
            h.check(srv.sent < 40 << 20, f"  after {srv.sent >> 20} MiB sent, {took:.1f} s")
            rc, name, msg, took = timed_fetch(env, srv.url + "/slow/web.img.gz?bps=40", "trickle")
            h.check(rc == 1 and name == E + "FetchFailed" and "too slow" in msg and took < 20,
                    f"a 40 byte/s trickle fails under LowSpeedLimit in {took:.1f} s: {msg}")
        finally:
            srv.close()
    with h.Env(conf_extra={"Fetch": {"MaxDownloadTimeSec": "2", "LowSpeedLimit": "0"}}) as env:
        good_image(env)
        srv = h.HttpServer(env.src)
        try:
            rc, name, msg, took = timed_fetch(env, srv.url + "/slow/web.img.gz?bps=50000", "late")
            h.check(rc == 1 and "MaxDownloadTimeSec" in msg and took < 6, f"an overall deadline ({took:.1f} s): {msg}")
        finally:
            srv.close()

    # one user cannot take every slot; users take turns
    a = h.hvwg_member()
    b = h.second_member()
    with h.Env(conf_extra={"Fetch": {"MaxConcurrent": "2", "MaxQueuedJobs": "5"}}) as env:
        good_image(env)
        srv = h.HttpServer(env.src)
        try:
            url = srv.url + "/slow/web.img.gz?bps=20000"
            ids_a = []
            for i in range(3):
                r = env.ctl("--no-wait", "fetch", url + f"&n=a{i}", f"a{i}", user=a)  # other URLs: no joining
                h.check(r.returncode == 0, f"user A queues a{i}")
                ids_a.append(int(r.stdout.split()[0]))
            r = env.ctl("--no-wait", "fetch", url + "&n=b0", "b0", user=b)
            id_b = int(r.stdout.split()[0])
            ok = h.wait_for(lambda: job_phase(env, id_b) == "download", 5)
            phases = [job_phase(env, j) for j in ids_a]
            h.check(ok and phases.count("download") == 1, f"user B runs while A holds one slot (A: {phases})")
            r = env.ctl("--no-wait", "fetch", url + "&n=r0", "r0")  # root: the fifth job
            h.check(r.returncode == 0, "root queues a fifth job")
            r = call_fetch(env, url + "&n=r1", "r1")
            h.check(r.returncode != 0 and "queue is full" in r.stderr and "MaxQueuedJobs=5" in r.stderr,
                    "the sixth is refused: the queue is full: " + r.stderr.strip())
            cancel_all(env)
        finally:
            srv.close()


def credential_tests():
    print("== 3. credentials in source URLs")
    with h.Env() as env:
        good_image(env)
        srv = h.HttpServer(env.src)
        mon = subprocess.Popen(["busctl", "--address=" + env.address, "--json=short", "monitor",
                                "--match", "type='signal'", "--match", "type='method_return'", "--match", "type='error'"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        seen = []
        threading.Thread(target=lambda: seen.extend(mon.stdout), daemon=True).start()
        time.sleep(0.3)
        try:
            auth = f"http://alice:{SECRETS[0]}@127.0.0.1:{srv.port}"
            r = env.ctl("--no-wait", "fetch", auth + f"/slow/web.img.gz?bps=300000&sig={SECRETS[1]}", "secret")
            jid = int(r.stdout.split()[0])
            path = f"/org/hepix/hvwg1/job/_{jid}"
            src = env.prop("Source", path=path, iface="org.hepix.hvwg1.Job")
            h.check("alice:***@" in src and "sig=***" in src and not any(s in src for s in SECRETS), "Job.Source is redacted: " + src)
            h.check(wait_job_gone(env, jid), "  the fetch ends")
            outputs = {"ListImages": json.dumps(env.call("ListImages")),
                       "hvwgctl images --json": env.ctl("--json", "images").stdout}
            rc, res, err = env.fetch(auth + f"/f/nothere.gz?sig={SECRETS[1]}", "bad")
            h.check(rc == 1 and res["error_name"] == E + "FetchFailed", "a failing fetch with a secret in the URL fails")
            outputs["JobRemoved error"] = res["error_message"]
            r = call_fetch(env, f"ftp://alice:{SECRETS[0]}@host/x.gz", "bad2")
            outputs["refused call"] = r.stderr
            time.sleep(0.5)
            mon.terminate()
            mon.wait()
            outputs["signals and replies seen by a monitor"] = "".join(seen)
            for root, _, files in os.walk(env.tmp):
                for f in files:
                    p = os.path.join(root, f)
                    if p.startswith(env.src) or not os.path.isfile(p) or os.path.getsize(p) > 4 << 20:
                        continue
                    outputs["file " + os.path.relpath(p, env.tmp)] = open(p, "rb").read().decode("latin-1")
            h.check("JobRemoved" in outputs["signals and replies seen by a monitor"], "  the monitor saw the signals")
            leaks = [k for k, v in outputs.items() if any(s in v for s in SECRETS)]
            h.check(not leaks, f"the secret is in none of {len(outputs)} outputs (bus replies, properties, signals, files, "
                               f"log){': leaked in ' + ', '.join(leaks) if leaks else ''}")
            h.check("alice:***@" in outputs["ListImages"], "  ListImages shows the redacted source")
        finally:
            if mon.poll() is None:
                mon.terminate()
            srv.close()


def lvm_label(path, part_offset):
    """An LVM2 physical-volume label (what pvcreate writes) in the second sector of a partition."""
    label = bytearray(512)
    label[0:8] = b"LABELONE"
    label[8:16] = (1).to_bytes(8, "little")
    label[20:24] = (32).to_bytes(4, "little")
    label[24:32] = b"LVM2 001"
    label[32:64] = b"0123456789abcdefghijklmnopqrstuv"
    # lvm2's CRC: the reflected CRC-32 polynomial, seed 0xf597a6cf, no final xor
    crc = ~zlib.crc32(bytes(label[20:]), ~0xf597a6cf & 0xffffffff) & 0xffffffff
    label[16:20] = crc.to_bytes(4, "little")
    with open(path, "r+b") as f:
        f.seek(part_offset + 512)
        f.write(label)


def content_tests():
    print("== 4, 5. URIs, metadata, LVM, LUKS")
    with h.Env() as env:
        img, gz = good_image(env)
        rc, res, err = env.fetch("file://" + gz, "keep")
        h.check(rc == 0, "a first image")
        before = env.store_files()
        forged = os.path.join(env.src, "x\ntable=mbr\npartition=9 142 1 0 0 512 -")
        with open(gz, "rb") as a, open(forged, "wb") as b:
            b.write(a.read())
        for uri in ("file://" + forged, "file://" + env.src + "/x%0Atable=mbr", "http://127.0.0.1/a%0d%0aX-Injected:%201"):
            r = call_fetch(env, uri, "inj")
            h.check(r.returncode != 0 and "control character" in r.stderr,
                    "refused: " + repr(uri[-30:]) + ": " + r.stderr.strip()[:120])
        # the audit trail shows the refused arguments with control characters escaped (\x0a): no line is forged
        forged_lines = [l for l in env.log().splitlines() if "partition=9" in l and "\\x0a" not in l]
        h.check(env.store_files() == before and not forged_lines, f"  nothing written, nothing forged in the log {forged_lines}")
        # tampered metadata is not trusted at start-up: re-inspected instead
        table = env.call("InspectImage", "s", "keep")
        env.stop_daemon()
        with open(os.path.join(env.images, "keep.meta"), "a") as f:
            f.write("table=mbr\npartition=9 142 1 0 0 512 -\n")
        env.start_daemon()
        h.check(env.call("InspectImage", "s", "keep") == table and "re-inspecting" in env.log(),
                "metadata with a duplicated key is re-inspected, not trusted")
        env.stop_daemon()
        with open(os.path.join(env.images, "keep.meta"), "a") as f:
            f.write("owner=0\n")
        env.start_daemon()
        h.check(env.call("InspectImage", "s", "keep") == table and env.log().count("re-inspecting") == 2,
                "metadata with an unknown key is re-inspected, not trusted")

        lvm = os.path.join(env.src, "hidden-lvm.img")
        h.make_mbr_image(lvm, mib=16, parts="label: dos\nstart=2048, size=8M, type=83, bootable\n")
        lvm_label(lvm, 2048 * 512)
        blk = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", "-O", str(2048 * 512), lvm], capture_output=True, text=True)
        h.check(blk.stdout.strip() == "LVM2_member", "  blkid sees the crafted label as LVM2_member")
        rc, res, err = env.fetch("file://" + h.gzip_file(lvm, lvm + ".gz"), "lvm")
        msg = (res or {}).get("error_message", err)
        h.check(rc == 1 and res["error_name"] == E + "LvmNotAllowed" and "partition 1 (type 0x83" in msg and "LVM2" in msg,
                "LVM behind a 0x83 type byte is refused: " + msg)
        luks = os.path.join(env.src, "luks.img")
        h.make_mbr_image(luks, mib=16, parts="label: dos\nstart=2048, size=8M, type=83, bootable\n")
        with open(luks, "r+b") as f:
            f.seek(2048 * 512)
            f.write(b"LUKS\xba\xbe\x00\x01aes" + bytes(29) + b"xts-plain64" + bytes(21) + b"sha256" + bytes(26) +
                    (4096).to_bytes(4, "big") + (32).to_bytes(4, "big") + bytes(20 + 32 + 4) + b"12345678-1234-1234-1234-123456789abc")
        rc, res, err = env.fetch("file://" + h.gzip_file(luks, luks + ".gz"), "luks")
        parts = env.call("InspectImage", "s", "luks")[2] if rc == 0 else []
        h.check(rc == 0 and parts and parts[0][5] == "crypto_LUKS", f"a LUKS partition is allowed and reported: {parts}")


def small_points():
    print("== 7. ids, modes, digests, redirects")
    member = h.hvwg_member()
    nobody = (65534, 65534, [])
    with h.Env() as env:
        img, gz = good_image(env)
        ids = set()
        for i in range(2):
            r = env.ctl("--no-wait", "fetch", "file://" + gz, f"i{i}")
            ids.add(int(r.stdout.split()[0]))
            h.wait_for(lambda: not env.call("ListJobs")[0], 30)
        env.stop_daemon()
        env.start_daemon()
        r = env.ctl("--no-wait", "fetch", "file://" + gz, "after")
        new = int(r.stdout.split()[0])
        h.wait_for(lambda: not env.call("ListJobs")[0], 30)
        h.check(new not in ids and new != 1 and new + 1 not in ids, f"job ids do not repeat across a restart ({sorted(ids)} then {new})")
        raw = os.path.join(env.images, "after.raw")
        st = os.stat(raw)
        h.check(stat.S_IMODE(st.st_mode) == 0o440 and st.st_gid == grp.getgrnam("hvwg").gr_gid, "images are 0440 root:hvwg")
        cat = subprocess.run(env._as(["cat", raw], nobody), capture_output=True)
        h.check(cat.returncode != 0, "  nobody cannot read them")
        cat = subprocess.run(env._as(["head", "-c", "512", raw], member), capture_output=True)
        h.check(cat.returncode == 0, "  a member of hvwg can")
        private = os.path.join(env.src, "private.gz")
        with open(gz, "rb") as a, open(private, "wb") as b:
            b.write(a.read())
        os.chmod(private, 0o600)
        real = h.sha512_file(private)
        rc, res, err = env.fetch("file://" + private, "priv", sha512="0" * 128)
        msg = res["error_message"]
        h.check(rc == 1 and res["error_name"] == E + "ChecksumMismatch" and real not in msg and "not shown" in msg,
                "ChecksumMismatch does not reveal the digest of a file only its owner may read: " + msg[:90] + "…")
        h.check(real in env.log(), "  the daemon's log has it")
        rc, res, err = env.fetch("file://" + gz, "pub", sha512="0" * 128)
        h.check(h.sha512_file(gz) in res["error_message"], "  a world-readable file's digest is shown")

    # https may not redirect to http
    import tempfile
    certdir = tempfile.mkdtemp(prefix="hvwg-cert-")
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    os.chmod(certdir, 0o755)
    os.chmod(cert, 0o644)
    with h.Env(conf_extra={"Fetch": {"CAPath": cert}}) as env:
        good_image(env)
        tls, plain = h.HttpServer(env.src, tls=(cert, key)), h.HttpServer(env.src)
        try:
            rc, res, err = env.fetch(tls.url + "/redirect/web.img.gz", "tls")
            h.check(rc == 0, "https to https redirects work")
            rc, res, err = env.fetch(tls.url + "/goto?u=" + plain.url + "/f/web.img.gz", "down")
            msg = (res or {}).get("error_message", err)
            h.check(rc == 1 and res["error_name"] == E + "SourceNotAllowed" and "https" in msg, "https to http is refused: " + msg)
        finally:
            tls.close()
            plain.close()
            import shutil
            shutil.rmtree(certdir, ignore_errors=True)

    if os.environ.get("HVWG_IN_NETNS") != "1":
        r = subprocess.run(["unshare", "--net", sys.executable, __file__, "--netns"], env={**os.environ, "HVWG_IN_NETNS": "1"})
        h.check(r.returncode == 0, "redirect checks in a private network namespace")


def netns_part():
    """In a fresh network namespace: 192.0.2.1 (TEST-NET-1) stands for a remote server."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"], check=True)
    with h.Env() as env:
        good_image(env)
        remote, local = h.HttpServer(env.src, host="192.0.2.1"), h.HttpServer(env.src)
        try:
            rc, res, err = env.fetch(remote.url + "/redirect/web.img.gz", "remote")
            h.check(rc == 0, "a redirect on the remote server works")
            rc, res, err = env.fetch(remote.url + "/goto?u=" + local.url + "/f/web.img.gz", "ssrf")
            msg = (res or {}).get("error_message", err)
            h.check(rc == 1 and res["error_name"] == E + "SourceNotAllowed" and "127.0.0.1" in msg,
                    "a remote server's redirect to loopback is refused: " + msg)
            rc, res, err = env.fetch(local.url + "/f/web.img.gz", "direct")
            h.check(rc == 0, "a loopback URL given by the caller itself works")
            env.stop_daemon()
            env.conf_extra = {"Fetch": {"AllowLoopbackRedirects": "yes"}}
            env.write_conf()
            env.start_daemon()
            rc, res, err = env.fetch(remote.url + "/goto?u=" + local.url + "/f/web.img.gz", "allowed")
            h.check(rc == 0, "  allowed with AllowLoopbackRedirects=yes")
        finally:
            remote.close()
            local.close()


def main():
    if "--netns" in sys.argv:
        netns_part()
        return
    fifo_tests()
    bound_tests()
    credential_tests()
    content_tests()
    small_points()


if __name__ == "__main__":
    main()
