"""Start-up with bad configuration: the daemon refuses with one line naming file and line."""
import atexit, os, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

_TOP = tempfile.mkdtemp(prefix="hvwg-conf-")
os.chmod(_TOP, 0o755)
atexit.register(shutil.rmtree, _TOP, True)


def run(conf_text, name="hvwgd.conf"):
    d = tempfile.mkdtemp(dir=_TOP)
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(conf_text)
    r = subprocess.run([h.HVWGD, "--config=" + p, "--bus-address=unix:path=/nonexistent"], capture_output=True,
                       text=True, timeout=30)
    return r, p


def main():
    r, p = run("[Storage]\nMaxImageSize=12X\n")
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    h.check(r.returncode != 0, "bad size: refuses to start")
    h.check(len(lines) == 1 and f"{p}:2:" in lines[0] and "MaxImageSize" in lines[0], "bad size: one line with file:line: " + r.stderr.strip())
    r, p = run("[Storage]\nImageRoot=/tmp/x\n[Bogus]\nA=b\n")
    h.check(r.returncode != 0 and f"{p}:3:" in r.stderr and "unknown section" in r.stderr, "unknown section names file:line")
    r, p = run("[Machine]\nHypervisor=vbox\n")
    h.check(r.returncode != 0 and f"{p}:2:" in r.stderr, "bad choice names file:line")
    r, p = run("no section line\n")
    h.check(r.returncode != 0 and f"{p}:1:" in r.stderr, "malformed line names file:line")
    r = subprocess.run([h.HVWGD, "--config=/nonexistent/hvwgd.conf"], capture_output=True, text=True, timeout=30)
    h.check(r.returncode != 0 and "/nonexistent/hvwgd.conf" in r.stderr, "missing --config file is an error")
    d = tempfile.mkdtemp(dir=_TOP)
    p = os.path.join(d, "unreadable.conf")
    open(p, "w").write("[Storage]\n")
    os.chmod(p, 0)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", h.HVWGD, "--config=" + p,
                        "--check-config"], capture_output=True, text=True, timeout=30)
    h.check(r.returncode != 0 and "cannot read" in r.stderr, "unreadable config refused: " + r.stderr.strip())
    # unknown keys only warn; drop-ins apply in order; --check-config prints the effective values
    d = tempfile.mkdtemp(dir=_TOP)
    p = os.path.join(d, "hvwgd.conf")
    open(p, "w").write("[Storage]\nImageRoot=/a\nFutureKey=1\n")
    os.mkdir(p + ".d")
    open(p + ".d/50-x.conf", "w").write("[Storage]\nImageRoot=/from-50\n")
    open(p + ".d/10-x.conf", "w").write("[Storage]\nImageRoot=/from-10\nMaxImageSize=1T\n")
    r = subprocess.run([h.HVWGD, "--config=" + p, "--check-config"], capture_output=True, text=True, timeout=30)
    h.check(r.returncode == 0 and "ImageRoot=/from-50" in r.stdout and f"MaxImageSize={1 << 40}" in r.stdout,
            "drop-ins in lexical order")
    h.check("FutureKey" in r.stderr and f"{p}:3" in r.stderr, "unknown key warns with file:line")

    # the shipped default configuration parses cleanly, without warnings
    r = subprocess.run([h.HVWGD, "--config=" + os.path.join(h.SRC, "conf/hvwgd.conf"), "--check-config"],
                       capture_output=True, text=True, timeout=30)
    h.check(r.returncode == 0 and r.stderr == "" and "ImageRoot=/var/lib/hvwgd/images" in r.stdout,
            "conf/hvwgd.conf parses without warnings " + r.stderr.strip())

    # SIGTERM right at start-up. Before main() blocks the signals (while the dynamic loader and,
    # under ASan, the sanitizer start) a SIGTERM ends the process by the signal itself; once hvwgd
    # has logged anything, signals are blocked and it must exit 0.
    with h.Env(start=False) as env:
        for delay in (0.0, 0.02, 0.1):
            open(env.log_path, "w").close()
            env.start_daemon(wait=False)
            time.sleep(delay)
            rc = env.stop_daemon(signal.SIGTERM)
            early = env.log().strip() == ""
            h.check(rc == 0 or (early and rc == -signal.SIGTERM), f"SIGTERM {delay}s into start-up exits cleanly (rc {rc})")
            h.check("error" not in env.log().lower(), "no error logged on an early SIGTERM")
        # deterministic: after the first log line, before the bus name is taken
        open(env.log_path, "w").close()
        env.start_daemon(wait=False)
        h.check(h.wait_for(lambda: env.log().strip() != "", timeout=30, step=0.001), "hvwgd starts logging")
        rc = env.stop_daemon(signal.SIGTERM)
        h.check(rc == 0, f"SIGTERM during start-up (after the first log line) exits 0 (rc {rc})")


if __name__ == "__main__":
    main()
