"""hvwgctl against a daemon on the private bus: every command, text and --json output, exit
codes (0 ok, 1 failed, 2 usage, 3 canceled, 4 unreachable/denied), the progress bar on a real
pseudo-terminal, plain output without control characters otherwise, watch, bash completion,
man pages."""
import json, os, re, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

NOBODY = (65534, 65534, [])
CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def main():
    with h.Env() as env:
        srv = h.HttpServer(env.src)
        try:
            img = h.make_mbr_image(os.path.join(env.src, "c.img"), mib=64)
            gz = h.gzip_file(img, img + ".gz")

            r = env.ctl("status")
            h.check(r.returncode == 0 and re.search(r"^Version\s+\S+", r.stdout, re.M) and "ImageRoot" in r.stdout, "status (text)")
            r = env.ctl("--json", "status")
            st = json.loads(r.stdout)
            h.check(set(st) >= {"Version", "ImageRoot", "MachineRoot", "LibvirtURI", "Hypervisor", "ScratchPerCoreGiB",
                                "MemoryPerCoreMiB", "MaxImageSize", "ActiveJobs"} and st["MaxImageSize"] == 64 << 30,
                    "status --json has every property")

            # fetch, non-TTY: one plain line per phase, no control characters
            r = env.ctl("fetch", "file://" + gz)
            # job ids start at a random point (they do not repeat across restarts)
            jid = re.search(r"^job (\d+): done$", r.stdout, re.M)
            h.check(r.returncode == 0 and jid, "fetch waits and says done")
            h.check(not CTRL.search(r.stdout + r.stderr), "no control characters on a non-TTY")
            h.check(f"job {jid.group(1)}: download" in r.stdout or f"job {jid.group(1)}: queued" in r.stdout,
                    "phase lines on a non-TTY: " + r.stdout.strip())
            r = env.ctl("images")
            h.check(r.returncode == 0 and r.stdout.splitlines()[0].startswith("NAME") and re.search(r"^c\s+64\.0 MiB", r.stdout, re.M),
                    "images table")
            r = env.ctl("--bytes", "images")
            h.check(str(64 << 20) in r.stdout, "images --bytes shows exact sizes")
            imgs = json.loads(env.ctl("--json", "images").stdout)
            h.check(imgs[0]["name"] == "c" and imgs[0]["size"] == 64 << 20 and imgs[0]["source"] == "file://" + gz, "images --json")
            r = env.ctl("inspect", "c")
            h.check(r.returncode == 0 and "ext4" in r.stdout and "swap" in r.stdout, "inspect table")
            ins = json.loads(env.ctl("--json", "inspect", "c").stdout)
            h.check(ins["table"] == "mbr" and [p["filesystem"] for p in ins["partitions"]] == ["ext4", "swap"] and
                    ins["partitions"][0]["bootable"] is True and ins["partitions"][0]["type"] == 0x83, "inspect --json")
            h.check(json.loads(env.ctl("--json", "jobs").stdout) == [], "jobs --json: none")

            # --no-wait prints id and path; cancel works; a canceled wait exits 3
            r = env.ctl("--no-wait", "fetch", srv.url + "/slow/c.img.gz?bps=50000", "slow")
            m = re.fullmatch(r"(\d+) (/org/hepix/hvwg1/job/_\d+)\n", r.stdout)
            h.check(r.returncode == 0 and m, "fetch --no-wait prints id and path: " + r.stdout.strip())
            jobs = json.loads(env.ctl("--json", "jobs").stdout)
            h.check(len(jobs) == 1 and jobs[0]["id"] == int(m.group(1)) and jobs[0]["type"] == "fetch" and jobs[0]["target"] == "slow",
                    "jobs --json shows it")
            r = env.ctl("jobs")
            h.check(r.stdout.startswith("ID") and "slow" in r.stdout, "jobs table")
            r = env.ctl("cancel", m.group(1))
            h.check(r.returncode == 0, "cancel")
            time.sleep(0.5)
            h.check(env.ctl("--json", "jobs").stdout.strip() == "[]", "job gone after cancel")

            # progress bar on a real pseudo-terminal
            r = subprocess.run(["script", "-qec", f"{h.HVWGCTL} --bus-address={env.address} fetch "
                                                  f"{srv.url}/slow/c.img.gz?bps=400000 tty", "/dev/null"],
                               capture_output=True, timeout=120)
            out = r.stdout.decode(errors="replace")  # bytes: text mode would turn \r into \n
            h.check(r.returncode == 0 and "\r" in out and re.search(r"download\s+\d+%", out), "TTY: a progress bar with percent")
            h.check(re.search(r"\d+(\.\d)? [KMG]iB/s", out) is not None and "ETA" in out, "TTY: rate and ETA")
            h.check(out.rstrip().splitlines()[-1].strip() == "job %s: done" % (int(m.group(1)) + 1), "TTY: ends with the final line")

            # watch: events as lines until SIGINT (exit 0)
            w = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "watch"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            env.ctl("fetch", "file://" + gz, "w1")
            time.sleep(0.5)
            w.send_signal(signal.SIGINT)
            wout, werr = w.communicate(timeout=10)
            h.check(w.returncode == 0 and re.search(r"job \d+: new", wout) and re.search(r"job \d+: done", wout),
                    "watch prints job events until interrupted: " + wout.strip().replace("\n", " | "))

            # failures and their exit codes
            r = env.ctl("inspect", "nothere")
            h.check(r.returncode == 1 and r.stderr.startswith("hvwgctl: no image named nothere"), "unknown image: exit 1")
            r = env.ctl("--verbose", "inspect", "nothere")
            h.check("org.hepix.hvwg1.Error.NoSuchImage" in r.stderr, "--verbose adds the error name")
            r = env.ctl("--json", "fetch", "file://" + gz, "c")
            h.check(r.returncode == 1 and "already exists" in r.stderr, "fetch of an existing name: exit 1")
            r = env.ctl("fetch", "file://" + gz, "x", "--size=big")
            h.check(r.returncode == 2 and "invalid --size" in r.stderr, "bad size string: exit 2")
            r = env.ctl("fetch", "file://" + gz, "x", "--max-size=0")
            h.check(r.returncode == 2, "max-size 0: exit 2")
            for args in (["frobnicate"], ["inspect"], ["rm", "a", "b"], ["cancel", "x"], ["--bogus", "status"], [],
                         ["create", "c", "vm"], ["create", "c", "vm", "--cores=0"], ["create", "c", "vm", "--cores=2", "--scratch=1.5G"],
                         ["create", "c", "vm", "--cores=2", "--memory=100"]):
                r = env.ctl(*args)
                h.check(r.returncode == 2, f"usage error {args}: exit 2")
            r = env.ctl("--json", "create", "c", "vm1", "--cores=2", "--scratch=4G", "--memory=2G", "--no-start")
            res = json.loads(r.stdout) if r.stdout.strip() else {}
            h.check(r.returncode == 0 and res.get("result") == "done", "create --json: done " + r.stderr.strip())
            r = env.ctl("machines")
            h.check(r.returncode == 0 and re.search(r"^vm1\s+[0-9a-f-]{36}\s+2\s+2\.0 GiB\s+4\.0 GiB\s+c\s+shut-off", r.stdout, re.M),
                    "machines table: " + r.stdout.strip().replace("\n", " | "))
            ms = json.loads(env.ctl("--json", "machines").stdout)
            h.check(len(ms) == 1 and ms[0]["name"] == "vm1" and ms[0]["cores"] == 2 and ms[0]["memory_mib"] == 2048 and
                    ms[0]["scratch_bytes"] == 4 << 30 and ms[0]["image"] == "c", "machines --json")
            r = env.ctl("--verbose", "rm", "c")
            h.check(r.returncode == 1 and "ImageBusy" in r.stderr, "an image in use by a machine cannot be removed")
            r = env.ctl("create", "c", "vm1", "--cores=1")
            h.check(r.returncode == 1 and "already exists" in r.stderr, "create of an existing machine: exit 1")
            r = env.ctl("destroy", "vm1", "--keep-disks")
            ms = json.loads(env.ctl("--json", "machines").stdout)
            h.check(r.returncode == 0 and [(x["name"], x["state"]) for x in ms] == [("vm1", "undefined")] and
                    os.path.exists(os.path.join(env.machines, "vm1", "root.raw")), f"destroy --keep-disks: listed as undefined {ms}")
            r = env.ctl("destroy", "vm1")
            h.check(r.returncode == 0 and not os.path.exists(os.path.join(env.machines, "vm1")) and
                    json.loads(env.ctl("--json", "machines").stdout) == [], "destroy again clears the leftovers")
            r = env.ctl("destroy", "vm1")
            h.check(r.returncode == 1 and "no machine named vm1" in r.stderr, "destroy of a missing machine: exit 1")
            r = env.ctl("rm", "c", user=NOBODY)
            h.check(r.returncode == 4 and "access denied" in r.stderr and "group hvwg" in r.stderr, "access denied: exit 4: " + r.stderr.strip())
            r = env.ctl("rm", "c")
            h.check(r.returncode == 0 and "c" not in [i["name"] for i in json.loads(env.ctl("--json", "images").stdout)], "rm")
            r = subprocess.run([h.HVWGCTL, "--bus-address=unix:path=/nonexistent/bus", "status"], capture_output=True, text=True)
            h.check(r.returncode == 4 and "cannot connect" in r.stderr, "daemon not reachable: exit 4: " + r.stderr.strip())
            env.stop_daemon()
            r = env.ctl("status")
            h.check(r.returncode == 4 and "hvwgd is not running" in r.stderr, "daemon not running on the bus: exit 4: " + r.stderr.strip())
            r = env.ctl("--version")
            h.check(r.returncode == 0 and r.stdout.startswith("hvwgctl "), "--version")
            r = env.ctl("--help")
            h.check(r.returncode == 0 and "Exit codes" in r.stdout, "--help")
        finally:
            srv.close()

        # completion (with the daemon back for name completion)
        env.start_daemon()
        env.ctl("fetch", "file://" + gz, "complete-me")
        comp = os.path.join(h.SRC, "completion/hvwgctl.bash")

        def complete(words):
            script = (f"PATH={os.path.dirname(h.HVWGCTL)}:$PATH; source {comp}; COMP_WORDS=({words}); "
                      f"COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _hvwgctl; echo \"${{COMPREPLY[@]}}\"")
            return subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout.strip()
        h.check(subprocess.run(["bash", "-n", comp]).returncode == 0, "completion script: bash -n")
        h.check(complete("hvwgctl fe") == "fetch", "hvwgctl fe<TAB> -> fetch")
        h.check(complete(f"hvwgctl --bus-address={env.address} inspect comp") == "complete-me", "image names from the daemon")
        h.check("--keep-disks" in complete("hvwgctl destroy --k"), "command options")

    build = os.environ.get("HVWG_BUILD")
    if build and os.path.isdir(os.path.join(build, "man")):
        for page in sorted(os.listdir(os.path.join(build, "man"))):
            r = subprocess.run(["man", "--warnings", "-l", os.path.join(build, "man", page)], capture_output=True, text=True,
                               env=dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat"))
            h.check(r.returncode == 0 and r.stderr.strip() == "" and len(r.stdout) > 500, f"man -l {page} renders without warnings")
    else:
        print("SKIP part: no built man pages (HVWG_BUILD unset)")


if __name__ == "__main__":
    main()
