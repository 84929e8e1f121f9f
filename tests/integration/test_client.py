"""hvwgctl against a daemon on the private bus: every command, text and --json output, exit
codes (0 ok, 1 failed, 2 usage, 3 canceled, 4 unreachable/denied), the progress bar on a real
pseudo-terminal, plain output without control characters otherwise, watch, bash completion,
man pages."""
import json, os, re, shlex, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

NOBODY = (65534, 65534, [])
CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def machine_commands(env):
    """The machine commands in text and JSON, with their exit codes (vm1 exists, shut-off)."""
    r = env.ctl("show", "vm1")
    h.check(r.returncode == 0 and re.search(r"State:\s+shut-off \(created\)", r.stdout) and "Disk:       root" in r.stdout and
            "Console:" in r.stdout, "show (text): " + r.stdout.strip().replace("\n", " | ")[:200])
    d = json.loads(env.ctl("--json", "show", "vm1").stdout)
    h.check(d["name"] == "vm1" and d["state"] == "shut-off" and d["owner_uid"] == 0 and d["transient"] is False and
            [x["role"] for x in d["disks"]] == ["root", "scratch"] and all(k == k.lower() for k in d), "show --json, snake_case")
    for cmd, state, words in (("start", "running", "started"), ("reboot", "running", "rebooting"), ("stop", "shut-off", "stopped")):
        r = env.ctl(cmd, "vm1")
        st = json.loads(env.ctl("--json", "show", "vm1").stdout)["state"]
        h.check(r.returncode == 0 and r.stdout.strip() == f"machine vm1: {words}" and st == state, f"{cmd}: {r.stdout.strip()} ({st})")
    env.ctl("start", "vm1")
    r = env.ctl("--json", "stop", "vm1", "--force")
    h.check(r.returncode == 0 and json.loads(r.stdout) == {"name": "vm1", "result": "done"}, "stop --force --json")
    r = env.ctl("--json", "reboot", "vm1")
    h.check(r.returncode == 1 and "is not running" in json.loads(r.stderr)["message"], "reboot of a stopped machine: exit 1, JSON error")
    r = env.ctl("stop", "vm1", "--timeout=x")
    h.check(r.returncode == 2, "stop --timeout=x: exit 2")
    r = env.ctl("--json", "create", "c", "vm9", "--cores=1", "--hypervisor=vmware")
    h.check(r.returncode == 2 and json.loads(r.stderr)["error"] == "org.freedesktop.DBus.Error.InvalidArgs",
            "InvalidArgs from the daemon: exit 2 as well")
    r = env.ctl("console", "vm1")
    h.check(r.returncode == 1 and "no console log yet" in r.stderr, "console of a machine that never wrote: exit 1")
    with open(os.path.join(env.machines, "vm1", "console.log"), "w") as f:
        f.write("line one\n\x1b]0;evil title\x07line two\n")
    r = env.ctl("console", "vm1")
    h.check(r.returncode == 0 and r.stdout == "line one\n\x1b]0;evil title\x07line two\n", "console prints the log as it is (not a TTY)")
    r = subprocess.run(["script", "-qec", f"{h.HVWGCTL} --bus-address={env.address} console vm1", "/dev/null"], capture_output=True,
                       timeout=30)
    h.check(b"\x1b" not in r.stdout and b"?]0;evil title?line two" in r.stdout, "console on a TTY: the guest's control bytes defused")
    # wait for a machine: here until it runs again
    w = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "--json", "wait", "vm1", "--state=running", "--timeout=20"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    env.ctl("start", "vm1")
    out, err = w.communicate(timeout=30)
    h.check(w.returncode == 0 and json.loads(out)["state"] == "running", "wait MACHINE --state=running " + err.strip())
    r = env.ctl("wait", "vm1", "--state=paused", "--timeout=1")
    h.check(r.returncode == 1 and "still running after 1 s" in r.stderr, "wait --timeout: exit 1 " + r.stderr.strip())
    # console -f follows until the machine stops
    f = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "console", "-f", "vm1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    with open(os.path.join(env.machines, "vm1", "console.log"), "a") as fh:
        fh.write("line three\n")
    time.sleep(0.5)
    env.ctl("stop", "vm1", "--force")
    out, err = f.communicate(timeout=20)
    h.check(f.returncode == 0 and out.endswith("line two\nline three\n") and "stopped" in err, "console -f: follows, ends when it stops")
    # wait for a job
    r = env.ctl("--no-wait", "--json", "create", "c", "vm2", "--cores=1", "--no-start")
    jid = json.loads(r.stdout)["id"]
    r = env.ctl("--json", "wait", str(jid))
    h.check(r.returncode in (0,) and json.loads(r.stdout)["result"] == "done" or "no job" in r.stderr, "wait JOB " + r.stderr.strip())
    r = env.ctl("wait", "12345")
    h.check(r.returncode == 1 and "no job with id 12345" in r.stderr, "wait of an unknown job: exit 1")
    env.ctl("destroy", "vm2")
    # transient: created, powered off, gone
    r = env.ctl("create", "c", "vm-t", "--cores=1", "--transient")
    h.check(r.returncode == 0 and json.loads(env.ctl("--json", "show", "vm-t").stdout)["transient"] is True, "create --transient")
    w = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "wait", "vm-t", "--state=removed"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    env.ctl("stop", "vm-t")
    out, err = w.communicate(timeout=30)
    h.check(w.returncode == 0 and out.strip() == "machine vm-t: removed (poweroff)", "wait --state=removed: " + out.strip() + err.strip())
    r = env.ctl("create", "c", "vm-x", "--cores=1", "--transient", "--no-start")
    h.check(r.returncode == 2, "--transient with --no-start: usage error")
    # per-command help
    for cmd, words in (("create", "--transient"), ("stop", "--timeout=SEC"), ("console", "--follow"), ("wait", "--state=STATE")):
        r = env.ctl(cmd, "--help")
        h.check(r.returncode == 0 and r.stdout.startswith(f"Usage: hvwgctl [OPTIONS] {cmd}") and words in r.stdout, f"{cmd} --help")
    # watch --json: one JSON object per line and event
    w = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "--json", "watch"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    env.ctl("start", "vm1")
    env.ctl("stop", "vm1", "--force")
    time.sleep(0.5)
    w.send_signal(signal.SIGINT)
    out, err = w.communicate(timeout=10)
    events = [json.loads(l) for l in out.splitlines()]
    h.check(w.returncode == 0 and {"event": "machine_state", "name": "vm1", "state": "running"} in events and
            {"event": "machine_state", "name": "vm1", "state": "shut-off"} in events, f"watch --json: JSON lines {events[:3]}")


def main():
    with h.Env() as env:
        srv = h.HttpServer(env.src)
        try:
            img = h.make_mbr_image(os.path.join(env.src, "c.img"), mib=64)
            gz = h.gzip_file(img, img + ".gz")

            r = env.ctl("status")
            h.check(r.returncode == 0 and re.search(r"^version\s+\S+", r.stdout, re.M) and "image_root" in r.stdout, "status (text)")
            r = env.ctl("--json", "status")
            st = json.loads(r.stdout)
            h.check(set(st) >= {"version", "image_root", "machine_root", "libvirt_uri", "hypervisor", "scratch_per_core_gib",
                                "memory_per_core_mib", "max_image_size", "active_jobs", "committed_cores", "capacity_cores",
                                "committed_memory_mib", "capacity_memory_mib", "committed_scratch_bytes"} and st["max_image_size"] == 64 << 30,
                    "status --json has every property, snake_case keys")
            h.check("\\/" not in r.stdout and "/" in r.stdout and "\n" not in r.stdout.strip(), "--json: compact, no \\/ escapes")
            r = env.ctl("--json=pretty", "status")
            h.check(json.loads(r.stdout) == st and r.stdout.count("\n") > 5, "--json=pretty")
            r = env.ctl("--json=fancy", "status")
            h.check(r.returncode == 2 and json.loads(r.stderr)["error"] == "usage", "--json=fancy: a usage error, as JSON on stderr")
            for what in ("images", "machines", "jobs"):
                r = env.ctl(what)
                h.check(r.returncode == 0 and r.stdout == f"No {what}.\n", f"an empty list says so: {r.stdout.strip()}")
                r = env.ctl("--no-legend", what)
                h.check(r.returncode == 0 and r.stdout == "", f"--no-legend {what}: nothing")

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
            err = json.loads(r.stderr)
            h.check(r.returncode == 1 and err["error"] == "org.hepix.hvwg1.Error.ImageExists" and "already exists" in err["message"],
                    "fetch of an existing name: exit 1, the error as JSON on stderr")
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
            r = env.ctl("--no-legend", "machines")
            h.check(r.stdout.startswith("vm1 "), "--no-legend: rows only")
            machine_commands(env)
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
            # hvwgd dies while a client waits for its job: the client says so instead of waiting forever
            w = subprocess.Popen([h.HVWGCTL, "--bus-address=" + env.address, "fetch", srv.url + "/slow/c.img.gz?bps=20000", "dies"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1)
            env.stop_daemon(signal.SIGKILL)
            out, err = w.communicate(timeout=20)
            h.check(w.returncode == 4 and "hvwgd went away while job" in err, "the daemon dies during a wait: exit 4 " + err.strip())
            env.start_daemon()
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

        def complete(line):
            # as bash calls it: COMP_WORDS split at blanks and at COMP_WORDBREAKS (= and : among them)
            words = [w for w in re.split(r"(\s+|[=:])", line) if w.strip()]
            script = (f"PATH={os.path.dirname(h.HVWGCTL)}:$PATH; source {comp}; COMP_LINE={shlex.quote(line)}; "
                      f"COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); "
                      f"COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _hvwgctl; echo \"${{COMPREPLY[@]}}\"")
            return subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout.strip()
        h.check(subprocess.run(["bash", "-n", comp]).returncode == 0, "completion script: bash -n")
        h.check(complete("hvwgctl fe") == "fetch", "hvwgctl fe<TAB> -> fetch")
        h.check(complete(f"hvwgctl --bus-address={env.address} inspect comp") == "complete-me", "image names from the daemon")
        h.check("--keep-disks" in complete("hvwgctl destroy --k"), "command options")
        env.ctl("create", "complete-me", "vm-comp", "--cores=1", "--no-start")
        h.check(complete(f"hvwgctl --bus-address={env.address} show vm-c") == "vm-comp", "machine names for show")
        h.check(complete("hvwgctl create img vm --hypervisor=") == "kvm qemu xen xen-pv", "--hypervisor= values (after the =)")
        h.check(complete("hvwgctl create img vm --hypervisor=q") == "qemu", "--hypervisor=q -> qemu")
        h.check(complete("hvwgctl --json=p") == "pretty", "--json=p -> pretty")
        h.check("--follow" in complete("hvwgctl console --f") and "--transient" in complete("hvwgctl create --tr"), "new options")

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
