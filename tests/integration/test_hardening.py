"""The systemd unit's file-system confinement, verified without systemd: hvwgd runs in a mount
namespace where the whole tree is read-only except its two stores (what ProtectSystem=strict +
ReadWritePaths give it), and a fetch, an inspection, a machine creation and its destruction
all work. Any write elsewhere would fail with EROFS. Also checks the unit's directives."""
import os, re, subprocess, sys
sys.path.insert(0, os.path.dirname(__file__))
import harness as h


def main():
    h.need(os.geteuid() == 0, "needs root for a mount namespace")
    # the unit as installed: the build fills in sbindir (/usr/sbin in the packages)
    import tempfile
    unit = open(os.path.join(h.SRC, "systemd/hvwgd.service.in")).read().replace("@SBINDIR@", "/usr/sbin")
    unit_dir = tempfile.mkdtemp(prefix="hvwg-unit-")
    unit_path = os.path.join(unit_dir, "hvwgd.service")
    open(unit_path, "w").write(unit)
    for d in ("Type=notify", "ProtectSystem=strict", "ReadWritePaths=/var/lib/hvwgd", "ProtectHome=yes", "PrivateTmp=yes",
              "NoNewPrivileges=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service"):
        h.check(re.search(rf"^{re.escape(d)}$", unit, re.M) is not None, f"unit has {d}")
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", unit_path], capture_output=True, text=True)
    import shutil
    shutil.rmtree(unit_dir, ignore_errors=True)
    m = re.search(r"Overall exposure level for hvwgd.service: ([0-9.]+)", r.stdout)
    if m:
        h.check(float(m.group(1)) <= 4.0, f"systemd-analyze security exposure {m.group(1)} <= 4.0")
    else:
        print("SKIP part: systemd-analyze security --offline is not available here")

    with h.Env(start=False) as env:
        os.makedirs(env.images, exist_ok=True)
        os.makedirs(env.machines, exist_ok=True)
        # everything read-only but the stores; the bus socket needs no write access to connect
        script = ("set -e; mount --make-rprivate /; "
                  f"mount --bind {env.images} {env.images}; mount --bind {env.machines} {env.machines}; "
                  "mount -o remount,bind,ro /; "
                  f"touch /var/tmp/hvwg-should-fail 2>/dev/null && exit 99; exec \"$@\"")
        wrapper = ["unshare", "--mount", "--", "sh", "-c", script, "sh"]
        env.start_daemon(wrapper=wrapper)
        h.check(env.daemon.poll() is None, "hvwgd runs with a read-only tree and writable stores")
        img = h.make_mbr_image(os.path.join(env.src, "r.img"), mib=64)
        rc, res, err = env.fetch("file://" + h.gzip_file(img, img + ".gz"), "r")
        h.check(rc == 0, "fetch works " + err.strip())
        h.check(env.call("InspectImage", "s", "r")[0] == "mbr", "inspect works")
        h.wait_for(lambda: "connected to libvirt" in env.log(), timeout=20)
        r = env.ctl("create", "r", "vm", "--cores=1", "--scratch=1G", "--no-start")
        h.check(r.returncode == 0, "CreateMachine works (copy, scratch, define) " + r.stderr.strip())
        r = env.ctl("destroy", "vm")
        h.check(r.returncode == 0, "DestroyMachine works")
        r = env.ctl("rm", "r")
        h.check(r.returncode == 0, "RemoveImage works")
        h.check("Read-only file system" not in env.log() and "EROFS" not in env.log(), "no write outside the stores was attempted")
        rc = env.stop_daemon()
        h.check(rc == 0, f"clean exit ({rc})")


if __name__ == "__main__":
    main()
