"""A store that fills up: NoSpace (early estimate and mid-write ENOSPC), nothing left behind, the
daemon keeps answering, and the next fetch succeeds once there is room."""
import json, os, random, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

E = "org.hepix.hvwg1.Error."


def main():
    if os.geteuid() != 0:
        h.skip("needs root to mount a small tmpfs store")
    store = "/tmp/hvwg-nospace-%d" % os.getpid()
    os.makedirs(store)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", store], capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(store)
        h.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    try:
        with h.Env(store_dir=store) as env:
            rnd = random.Random(7)
            # incompressible: 30 MiB of random data gzips to ~30 MiB; the estimate says no at once
            big = os.path.join(env.src, "random.img")
            h.make_mbr_image(big, mib=64, parts="label: dos\nstart=2048, type=83\n")
            with open(big, "r+b") as f:
                f.seek(1 << 20)
                f.write(rnd.randbytes(30 << 20))
            gz = h.gzip_file(big, big + ".gz", level=1)
            before = env.store_files()
            rc, res, err = env.fetch("file://" + gz, "big")
            h.check(rc == 1 and res["error_name"] == E + "NoSpace" and "not enough space" in res["error_message"],
                    "early free-space check: " + (res or {}).get("error_message", err))
            h.check(env.store_files() == before, "nothing left after the early refusal")
            # compressible: 60 MiB of text-like data gzips small, passes the estimate, then hits ENOSPC
            txt = os.path.join(env.src, "text.img")
            h.make_mbr_image(txt, mib=96, parts="label: dos\nstart=2048, type=83\n")
            with open(txt, "r+b") as f:
                f.seek(1 << 20)
                buf = bytearray()
                i = 0
                while len(buf) < (60 << 20):
                    buf += b"%08d job log line: event %d processed on worker %d\n" % (i, rnd.randint(0, 99), i % 7)
                    i += 1
                f.write(bytes(buf[: 60 << 20]))
            gz2 = h.gzip_file(txt, txt + ".gz", level=6)
            h.check(os.path.getsize(gz2) * 2 < (40 << 20), f"the text image compresses to {os.path.getsize(gz2) >> 20} MiB")
            rc, res, err = env.fetch("file://" + gz2, "text")
            msg = (res or {}).get("error_message", err)
            h.check(rc == 1 and res["error_name"] == E + "NoSpace" and "No space left on device" in msg and "Success" not in msg,
                    "mid-write ENOSPC is NoSpace: " + msg)
            h.check(env.store_files() == before, "nothing left after ENOSPC")
            h.check(env.prop("Version") and env.call("ListImages") == [[]], "the daemon keeps answering")
            # CreateMachine into a machine store without room for the root disk: NoSpace, rolled back
            mstore = store + "-machines"
            os.makedirs(mstore)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mstore], check=True)
            try:
                data = os.path.join(env.src, "data.img")
                h.make_mbr_image(data, mib=32, parts="label: dos\nstart=2048, type=83\n")
                with open(data, "r+b") as f:
                    f.seek(1 << 20)
                    f.write(rnd.randbytes(20 << 20))
                rc, res, err = env.fetch("file://" + data, "data", raw=True)
                h.check(rc == 0, "a 32 MiB image with 20 MiB of data")
                env.conf_extra = {"Storage": {"MachineRoot": mstore}}
                env.write_conf()
                env.stop_daemon()
                env.start_daemon()
                h.wait_for(lambda: "connected to libvirt" in env.log(), timeout=10)
                r = env.ctl("--json", "create", "data", "vm", "--cores=1", "--scratch=0", "--no-start")
                res = json.loads(r.stdout) if r.stdout.strip() else {}
                h.check(r.returncode == 1 and res.get("error_name") == E + "NoSpace" and "not enough space" in res.get("error_message", ""),
                        "CreateMachine without room for the root disk: NoSpace " + res.get("error_message", r.stderr))
                h.check(h.machine_dirs(mstore) == [], "  nothing left in MachineRoot")
                h.check(env.ctl("rm", "data").returncode == 0, "  the image is not held by the failed create")
            finally:
                env.stop_daemon()
                subprocess.run(["umount", "-l", mstore])
                os.rmdir(mstore)
                env.conf_extra = {}
                env.write_conf()
                env.start_daemon()
            # room again: a small image goes in
            small = h.make_mbr_image(os.path.join(env.src, "small.img"), mib=16, parts="label: dos\nstart=2048, type=83\n")
            rc, res, err = env.fetch("file://" + h.gzip_file(small, small + ".gz"), "small")
            h.check(rc == 0, "the next fetch that fits succeeds")
    finally:
        subprocess.run(["umount", "-l", store])
        os.rmdir(store)


if __name__ == "__main__":
    main()
