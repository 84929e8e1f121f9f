"""Test harness: a private dbus-daemon with the project's bus policy, hvwgd on it with a temp
config and temp stores, helpers to call it, and teardown by PID even when a test fails.

Binaries come from the environment (set by ctest): HVWGD, HVWGCTL, HVWG_SRC.
"""
import atexit, hashlib, json, os, pwd, shutil, signal, subprocess, sys, tempfile, time

SRC = os.environ.get("HVWG_SRC", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
HVWGD = os.environ.get("HVWGD", os.path.join(SRC, "build/hvwgd"))
HVWGCTL = os.environ.get("HVWGCTL", os.path.join(SRC, "build/hvwgctl"))
BUS, OBJ, MGR = "org.hepix.hvwg1", "/org/hepix/hvwg1", "org.hepix.hvwg1.Manager"

_live = []


def _cleanup_all():
    for env in list(_live):
        env.stop()


atexit.register(_cleanup_all)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)


class Env:
    """A private bus + hvwgd. Use as a context manager."""

    def __init__(self, conf_extra=None, store_dir=None, start=True):
        self.tmp = tempfile.mkdtemp(prefix="hvwg-test-")
        os.chmod(self.tmp, 0o755)
        self.sock = os.path.join(self.tmp, "bus")
        self.address = "unix:path=" + self.sock
        self.images = store_dir or os.path.join(self.tmp, "images")
        self.machines = os.path.join(self.tmp, "machines")
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)
        os.chmod(self.src, 0o755)
        self.conf = os.path.join(self.tmp, "hvwgd.conf")
        self.conf_extra = conf_extra or {}
        self.write_conf()
        template = open(os.path.join(SRC, "dbus/private-bus.conf.in")).read()
        with open(os.path.join(self.tmp, "bus.conf"), "w") as f:
            f.write(template.replace("@SOCKET@", self.sock).replace("@POLICY@", os.path.join(SRC, "dbus/org.hepix.hvwg1.conf")))
        self.bus_proc = None
        self.daemon = None
        self.log_path = os.path.join(self.tmp, "hvwgd.log")
        _live.append(self)
        self.start_bus()
        if start:
            self.start_daemon()

    def write_conf(self):
        sections = {"Storage": {"ImageRoot": self.images, "MachineRoot": self.machines, "AllowedSourceDirs": self.src},
                    "Machine": {"LibvirtURI": "test:///default", "Hypervisor": "qemu",
                                # test:///default machines use no real CPU or memory: the
                                # capacity limits are tested where they are meant to bite
                                "CpuOvercommit": "64", "ReservedMemoryMiB": "0"},
                    # downloads are not retried unless a test is about retries (test_fetch_resume)
                    "Fetch": {"Retries": "0"}}
        for sec, kv in self.conf_extra.items():
            sections.setdefault(sec, {}).update(kv)
        with open(self.conf, "w") as f:
            for sec, kv in sections.items():
                f.write(f"[{sec}]\n")
                for k, v in kv.items():
                    f.write(f"{k}={v}\n")

    def start_bus(self):
        self.bus_proc = subprocess.Popen(["dbus-daemon", "--nofork", "--nosyslog", "--config-file",
                                          os.path.join(self.tmp, "bus.conf")],
                                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "bus.log"), "w"))
        for _ in range(200):
            if os.path.exists(self.sock):
                return
            time.sleep(0.025)
        raise RuntimeError("dbus-daemon did not start")

    def start_daemon(self, wait=True, extra_args=(), wrapper=()):
        log = open(self.log_path, "a")
        self.daemon = subprocess.Popen([*wrapper, HVWGD, "--bus-address=" + self.address, "--config=" + self.conf, *extra_args],
                                       stdout=log, stderr=log)
        if wait:
            for _ in range(300):
                if self.busctl("status", BUS, check=False).returncode == 0:
                    return
                if self.daemon.poll() is not None:
                    raise RuntimeError("hvwgd exited at start-up:\n" + self.log())
                time.sleep(0.05)
            raise RuntimeError("hvwgd did not take its bus name:\n" + self.log())

    def stop_daemon(self, sig=signal.SIGTERM, timeout=10):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            try:
                self.daemon.wait(timeout)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        rc = self.daemon.returncode if self.daemon else None
        self.daemon = None
        return rc

    def stop(self):
        rc = self.stop_daemon()
        log = self.log()
        # Under ASan/UBSan/LSan a report in the daemon's log fails the test, even one that passed.
        bad = [m for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:") if m in log]
        if self.bus_proc and self.bus_proc.poll() is None:
            self.bus_proc.terminate()
            try:
                self.bus_proc.wait(5)
            except subprocess.TimeoutExpired:
                self.bus_proc.kill()
        if self in _live:
            _live.remove(self)
        keep = os.environ.get("HVWG_KEEP_TMP")
        if bad:
            print("---- hvwgd log ----\n" + log[-8000:])
            keep = True
        if keep:
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if bad:
            raise AssertionError(f"sanitizer report in the hvwgd log ({', '.join(bad)}), exit {rc}")

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is not None:
            print("---- hvwgd log ----\n" + self.log()[-4000:])
        self.stop()

    def log(self):
        try:
            return open(self.log_path).read()
        except OSError:
            return ""

    def _as(self, cmd, user):
        if user is None:
            return cmd
        uid, gid, groups = user
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}",
                ("--groups=" + ",".join(map(str, groups))) if groups else "--clear-groups"] + cmd

    def busctl(self, *args, user=None, check=True, timeout=60):
        r = subprocess.run(self._as(["busctl", "--address=" + self.address, *args], user),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"busctl {args} failed: {r.stderr}")
        return r

    def call(self, method, sig="", *args, user=None, check=True):
        """busctl --json call; returns the decoded 'data' list, or the CompletedProcess when check=False."""
        r = self.busctl("--json=short", "call", BUS, OBJ, MGR, method, sig, *map(str, args), user=user, check=False)
        if not check:
            return r
        if r.returncode != 0:
            raise AssertionError(f"{method} failed: {r.stderr.strip()}")
        return json.loads(r.stdout)["data"] if r.stdout.strip() else []

    def prop(self, name, path=OBJ, iface=MGR):
        r = self.busctl("--json=short", "get-property", BUS, path, iface, name)
        return json.loads(r.stdout)["data"]

    def ctl(self, *args, user=None, timeout=600, input=None):
        return subprocess.run(self._as([HVWGCTL, "--bus-address=" + self.address, *args], user),
                              capture_output=True, text=True, timeout=timeout, input=input)

    def fetch(self, uri, name="", **opts):
        """FetchImage through hvwgctl, waiting; returns (exit code, json result or None, stderr)."""
        args = ["--json", "fetch", uri] + ([name] if name else [])
        for k, v in opts.items():
            args.append(f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}"))
        r = self.ctl(*args)
        try:
            res = json.loads(r.stdout) if r.stdout.strip() else None
        except json.JSONDecodeError:
            res = None
        return r.returncode, res, r.stderr

    def start_fetch(self, uri, name, *opts):
        """FetchImage through hvwgctl --no-wait: the job's {"id", "path"}."""
        r = self.ctl("--no-wait", "--json", "fetch", uri, name, *opts)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def jobs(self):
        """ListJobs: (id, type, target, phase, progress, path) each."""
        return self.call("ListJobs")[0]

    def images_list(self):
        return {i[0]: i for i in self.call("ListImages")[0]}

    def store_files(self):
        """Everything in ImageRoot, including .tmp/ contents."""
        out = []
        for root, dirs, files in os.walk(self.images):
            for f in files:
                if f != ".hvwgd.lock":  # hvwgd's lock on the store, there while it runs
                    out.append(os.path.relpath(os.path.join(root, f), self.images))
        return sorted(out)


def machine_dirs(path):
    """The machine directories in a MachineRoot (hvwgd's lock file is not one)."""
    return sorted(d for d in os.listdir(path) if not d.startswith("."))


def sha512_file(path):
    h = hashlib.sha512()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def make_mbr_image(path, mib=64, parts=None, fs=True, seed=1):
    """A raw disk with an MBR made by sfdisk: by default an ext4 partition (bootable) and a swap
    partition, with some random data written into the ext4 partition's free area."""
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    script = parts or "label: dos\nstart=2048, size=40M, type=83, bootable\nsize=8M, type=82\n"
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", path], input=script, text=True, check=True,
                   capture_output=True)
    if fs and parts is None:
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-E", f"offset={2048 * 512}", path, "40M"], check=True,
                       capture_output=True)
        swap = path + ".swap"
        with open(swap, "wb") as f:
            f.truncate(8 << 20)
        subprocess.run(["mkswap", swap], check=True, capture_output=True)
        with open(swap, "rb") as s, open(path, "r+b") as f:
            f.seek((2048 + 40 * 2048) * 512)
            f.write(s.read(1 << 20))
        os.unlink(swap)
        import random
        rnd = random.Random(seed)
        with open(path, "r+b") as f:
            f.seek((2048 * 512) + (24 << 20))
            f.write(bytes(rnd.getrandbits(8) for _ in range(300000)))
    return path


def make_data_image(path, mib, data_mib):
    """An MBR image with one partition holding data_mib MiB of random data (a multiple of 64):
    copying it takes real time, unlike a sparse image."""
    make_mbr_image(path, mib=mib, parts="label: dos\nstart=2048, type=83\n")
    chunk = os.urandom(64 << 20)
    with open(path, "r+b") as f:
        f.seek(1 << 20)
        for _ in range(data_mib // 64):
            f.write(chunk)
    return path


def gzip_file(src, dst, level=6, extra=()):
    with open(dst, "wb") as out:
        subprocess.run(["gzip", "-c", f"-{level}", *extra, src], stdout=out, check=True)
    return dst


QEMU_CONF = "/etc/libvirt/qemu.conf"


def need(cond, why):
    if not cond:
        skip(why)


def start_libvirtd(tmp):
    """libvirtd with a private socket dir; QEMU as root without a security driver, console to
    plain files. qemu.conf is only read at start-up: it is patched, libvirtd starts, and the
    original is put back at once."""
    for d in ("/var/log/libvirt/qemu", "/var/lib/libvirt/qemu", "/var/cache/libvirt/qemu", "/run/libvirt/qemu"):
        os.makedirs(d, exist_ok=True)
    for g in ("kvm", "libvirt-qemu"):
        subprocess.run(["groupadd", "-f", "-r", g], check=True)
    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        subprocess.run(["useradd", "-r", "-g", "libvirt-qemu", "-d", "/var/lib/libvirt", "-s", "/usr/sbin/nologin", "libvirt-qemu"],
                       check=True)
    sockdir = os.path.join(tmp, "libvirt")
    os.makedirs(sockdir, exist_ok=True)  # a second call restarts libvirtd on the same socket
    conf = os.path.join(tmp, "libvirtd.conf")
    with open(conf, "w") as f:
        f.write(f'unix_sock_dir = "{sockdir}"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\nlog_outputs = "3:stderr"\n')
    original = open(QEMU_CONF).read() if os.path.exists(QEMU_CONF) else None
    with open(QEMU_CONF, "a") as f:
        f.write('\n# hvwgd boot test (temporary)\nuser = "root"\ngroup = "root"\nsecurity_driver = "none"\n'
                'stdio_handler = "file"\nremember_owner = 0\n')
    log = open(os.path.join(tmp, "libvirtd.log"), "w")
    p = subprocess.Popen(["libvirtd", "--config", conf], stdout=log, stderr=log)
    sock = os.path.join(sockdir, "libvirt-sock")
    uri = f"qemu:///system?socket={sock}"
    try:
        for _ in range(200):
            if os.path.exists(sock) and subprocess.run(["virsh", "-c", uri, "version"], capture_output=True).returncode == 0:
                break
            if p.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        if original is None:
            os.unlink(QEMU_CONF)
        else:
            with open(QEMU_CONF, "w") as f:
                f.write(original)
    ok = p.poll() is None and os.path.exists(sock)
    return p, uri, ok


def guest_image():
    """The tiny bootable guest of tests/boot/make-guest.sh (with contrib's context service in it),
    made if missing and cached in the build directory, keyed by the scripts that make it."""
    import hashlib, tempfile
    build = os.environ.get("HVWG_BUILD") or tempfile.gettempdir()
    key = hashlib.sha1(b"".join(open(os.path.join(SRC, f), "rb").read()
                                for f in ("tests/boot/make-guest.sh", "contrib/context/hvwg-context"))).hexdigest()[:12]
    guest = os.path.join(build, "guest", f"guest-{key}.img")
    os.makedirs(os.path.dirname(guest), exist_ok=True)
    if not os.path.exists(guest):
        subprocess.run(["bash", os.path.join(SRC, "tests/boot/make-guest.sh"), guest], check=True)
    return guest


def need_libvirtd():
    """Skips unless libvirtd can run here; returns a temp dir for start_libvirtd()."""
    import shutil, tempfile
    need(os.geteuid() == 0, "needs root to run libvirtd")
    need(shutil.which("libvirtd") and shutil.which("virsh"), "libvirtd/virsh not installed (tools/deps.sh installs them)")
    return tempfile.mkdtemp(prefix="hvwg-libvirt-")


def stop_process(p, timeout=10):
    """SIGTERM, then SIGKILL if it does not go."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def hvwg_member():
    """Credentials (uid, gid, groups) of nobody as a member of the group hvwg, made if missing.
    Call before hvwgd starts: it looks the group up once."""
    import grp
    try:
        gid = grp.getgrnam("hvwg").gr_gid
    except KeyError:
        subprocess.run(["groupadd", "-f", "-r", "hvwg"], check=True)
        gid = grp.getgrnam("hvwg").gr_gid
    return (65534, 65534, [gid])


def second_member():
    """Credentials of a second user in the group hvwg (the system user hvwg-test, made if
    missing: the bus refuses connections of uids without a passwd entry)."""
    gid = hvwg_member()[2][0]
    try:
        pw = pwd.getpwnam("hvwg-test")
    except KeyError:
        # another test running at the same time (ctest -j2) may make it first
        subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "hvwg-test"], capture_output=True)
        pw = pwd.getpwnam("hvwg-test")
    return (pw.pw_uid, pw.pw_gid, [gid])


def wait_for(pred, timeout=30, step=0.05):
    """Polls pred() until it returns something true (returned) or the timeout passes (None)."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)
    print("ok   " + msg)


def allocated(path):
    return os.stat(path).st_blocks * 512


class HttpServer:
    """A local HTTP server for the fetch tests, serving files of a directory:
    /f/NAME           the file (Content-Length set)
    /slow/NAME?bps=N  the file at about N bytes/s
    /stall/NAME       headers and the first 64 KiB, then silence
    /redirect/NAME    302 to /f/NAME;  /loop  redirects to itself forever
    /goto?u=URL       302 to any URL
    /endless          empty gzip members, without end (60 s at most)
    /noclen/NAME      the file without Content-Length (ends at connection close)
    /drop/NAME?at=0.1,0.5   request k closes the connection at the k-th fraction of the file;
                      ETag, Last-Modified and Range (206) served as a real server does
    /range200/NAME    the same (drops at half once) but ignores Range: always 200
    /etagchange/NAME  drops at half once, then serves under another ETag (If-Range fails: 200)
    /status/NAME?code=503&n=2   that status for the first n requests, then the file
    /dropall/NAME     always drops half-way through what is asked for
    /cache/NAME       the file as a cacheable origin does (Cache-Control: public, max-age=3600,
                      ETag, Last-Modified, Range); ?bps=N paces it
    tls=(cert, key)   serve https instead
    anything else     404
    Records the User-Agent of each request, the headers of each (seen), the bytes sent per path
    (sent_by) and the requests per path with their Range header (requests)."""

    def __init__(self, root, tls=None, host="127.0.0.1"):
        import http.server, socket, ssl, threading, urllib.parse
        self.root = root
        self.agents = []
        self.seen = []
        self.sent_by = {}
        self.requests = {}
        self.stop_event = threading.Event()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.agents.append(self.headers.get("User-Agent", ""))
                outer.seen.append((self.path, dict(self.headers)))
                u = urllib.parse.urlparse(self.path)
                parts = u.path.split("/", 2)
                kind, name = (parts[1], parts[2]) if len(parts) == 3 else (parts[1] if len(parts) > 1 else "", "")
                path = os.path.join(outer.root, os.path.basename(name))
                if kind == "loop":
                    self.send_response(302)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if kind == "goto":
                    self.send_response(302)
                    self.send_header("Location", urllib.parse.parse_qs(u.query)["u"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if kind == "endless":
                    member = bytes([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]) * 3200
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    outer.sent = 0
                    end = time.time() + 60
                    try:
                        while time.time() < end and not outer.stop_event.is_set():
                            self.wfile.write(member)
                            outer.sent += len(member)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                if kind in ("drop", "range200", "etagchange", "status", "dropall", "cache"):
                    return self.resumable(kind, u, path)
                if kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "/f/" + name)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if kind not in ("f", "slow", "stall", "noclen") or not os.path.isfile(path):
                    body = b"not found\n"
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data = open(path, "rb").read()
                self.send_response(200)
                if kind == "noclen":  # no Content-Length: the body ends when the connection closes
                    self.send_header("Connection", "close")
                    self.end_headers()
                    outer.sent = 0
                    try:
                        for i in range(0, len(data), 65536):
                            self.wfile.write(data[i:i + 65536])
                            outer.sent = i + 65536
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/gzip")
                self.end_headers()
                try:
                    if kind == "f":
                        self.wfile.write(data)
                    elif kind == "stall":
                        self.wfile.write(data[:65536])
                        self.wfile.flush()
                        outer.stop_event.wait(120)
                    else:
                        bps = int(urllib.parse.parse_qs(u.query).get("bps", ["1000000"])[0])
                        chunk = max(1, bps // 20)
                        for i in range(0, len(data), chunk):
                            if outer.stop_event.is_set():
                                return
                            self.wfile.write(data[i:i + chunk])
                            self.wfile.flush()
                            time.sleep(0.05)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def resumable(self, kind, u, path):
                if not os.path.isfile(path):
                    self.send_error(404)
                    return
                key = u.path
                n = len(outer.requests.setdefault(key, []))
                outer.requests[key].append(self.headers.get("Range", ""))
                q = urllib.parse.parse_qs(u.query)
                data = open(path, "rb").read()
                if kind == "status" and n < int(q.get("n", ["1"])[0]):
                    body = b"busy\n"
                    self.send_response(int(q.get("code", ["503"])[0]))
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                etag = '"v2"' if kind == "etagchange" and n > 0 else '"v1"'
                if kind == "cache":  # a real server's validator: it changes with the content
                    import hashlib
                    etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                drops = [float(x) for x in q.get("at", ["0.5"])[0].split(",")] if kind == "drop" else \
                    [0.5] if (kind in ("range200", "etagchange") and n == 0) or kind == "dropall" else []
                drop_at = int(len(data) * drops[n]) if n < len(drops) else None
                start = 0
                rng, if_range = self.headers.get("Range", ""), self.headers.get("If-Range")
                if rng.startswith("bytes=") and kind != "range200" and (if_range is None or if_range == etag):
                    start = int(rng[6:].split("-")[0])
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", "Wed, 25 Nov 2026 10:00:00 GMT")
                self.send_header("Accept-Ranges", "bytes")
                if kind == "cache":
                    self.send_header("Cache-Control", "public, max-age=3600")
                self.end_headers()
                bps = int(q.get("bps", ["0"])[0])
                if kind == "dropall":  # half of whatever is asked for, every time
                    drop_at = start + (len(data) - start) // 2
                end = len(data) if drop_at is None or drop_at <= start else drop_at
                try:
                    for i in range(start, end, 65536):
                        chunk = data[i:min(i + 65536, end)]
                        self.wfile.write(chunk)
                        outer.sent_by[key] = outer.sent_by.get(key, 0) + len(chunk)
                        if bps:
                            self.wfile.flush()
                            time.sleep(len(chunk) / bps)
                            if outer.stop_event.is_set():
                                return
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if end < len(data):  # the connection drops mid-body
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
                    super().handle_error(request, client_address)  # a client killed mid-transfer is expected

        self.httpd = Server((host, 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        if tls:  # (certfile, keyfile)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.url = f"https://{host}:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stop_event.set()
        self.httpd.shutdown()
        self.httpd.server_close()
