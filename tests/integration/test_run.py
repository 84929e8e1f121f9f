"""hvwg-run: a command in a transient VM, behaving like the command. On test:///default (no
guest runs there): the allocation from the batch system's variables, the name from the job,
SIGTERM (exit 143), SIGKILL (hvwgd removes the VM bound to the dead caller), --timeout (124),
an image that does not exist (125), usage errors (125). On a real libvirtd + QEMU with the
boot test's guest: the output and exit status of `sh -c "nproc; echo hello; exit 3"` with
--env and --file on the scratch disk as working directory, and arguments with spaces, quotes,
$, a newline and non-ASCII arriving exactly as given; the VM gone afterwards."""
import os, re, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

RUN = os.environ.get("HVWG_RUN", os.path.join(os.path.dirname(h.HVWGCTL), "hvwg-run"))


def machines(env):
    return {x[0]: x for x in env.call("ListMachines")[0]}


def run(env, *args, extra_env=None, **kw):
    return subprocess.Popen([RUN, "--bus-address=" + env.address, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, **(extra_env or {})), **kw)


def lifecycle():
    with h.Env(conf_extra={"Machine": {"ScratchPerCoreGiB": "1", "MemoryPerCoreMiB": "128"}}) as env:
        img = h.make_mbr_image(os.path.join(env.src, "m.img"), mib=64)
        rc, res, err = env.fetch("file://" + h.gzip_file(img, img + ".gz"), "m")
        h.check(rc == 0, "an image " + err.strip())
        slurm = {"SLURM_JOB_ID": "4711", "SLURM_CPUS_ON_NODE": "2", "SLURM_MEM_PER_CPU": "300"}
        p = run(env, "--image=m", "--verbose", "--", "true", extra_env=slurm)
        ms = h.wait_for(lambda: [x for x in machines(env).values() if x[6] == "running"], 20)
        h.check(ms and re.fullmatch(r"slurm-4711-[A-Za-z0-9_-]+-[0-9a-f]{8}", ms[0][0]) and ms[0][2] == 2 and ms[0][3] == 600,
                f"the machine: named after the Slurm job, 2 cores (SLURM_CPUS_ON_NODE), 2 × 300 MiB (SLURM_MEM_PER_CPU): {ms}")
        name = ms[0][0]
        p.send_signal(signal.SIGKILL)
        p.communicate()
        h.check(h.wait_for(lambda: name not in machines(env), 20), "hvwg-run killed with SIGKILL: hvwgd removes the VM bound to it")
        h.check(f"machine {name}: its caller" in env.log() and "left the bus: destroying it" in env.log(), "logged")

        p = run(env, "--image=m", "--", "true", extra_env={"SLURM_JOB_ID": "4712"})
        ms = h.wait_for(lambda: [x for x in machines(env).values() if x[6] == "running"], 20)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        h.check(p.returncode == 143 and not machines(env) and "destroying the VM" in err,
                f"SIGTERM (scancel): exit 143, the VM destroyed ({p.returncode}, {err.strip()})")

        t0 = time.time()
        p = run(env, "--image=m", "--timeout=2s", "--", "sleep", "100")
        out, err = p.communicate(timeout=60)
        h.check(p.returncode == 124 and not machines(env) and "timeout (2 s) passed" in err,
                f"--timeout: exit 124 after {time.time() - t0:.1f} s, the VM destroyed")

        p = run(env, "--image=nothere", "--", "true")
        out, err = p.communicate(timeout=30)
        h.check(p.returncode == 125 and "no image named nothere" in err, "an image that does not exist: exit 125 " + err.strip())
        for args, words in ((["--", "true"], "--image=NAME is needed"), (["--image=m"], "no command"),
                            (["--image=m", "--timeout=soon", "--", "true"], "invalid --timeout"),
                            (["--image=m", "--env", "NOEQUALS", "--", "true"], "--env takes KEY=VALUE")):
            p = run(env, *args)
            out, err = p.communicate(timeout=30)
            h.check(p.returncode == 125 and words in err, f"usage {args}: exit 125, {err.strip()[:80]}")
        p = run(env, "--image=m", "--env", "lower=1", "--", "true")
        out, err = p.communicate(timeout=30)
        h.check(p.returncode == 125 and "invalid context_vars key" in err, "an --env key hvwgd refuses: exit 125")
        h.check(not machines(env), "nothing left behind")


def real_guest():
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("libvirtd", "virsh", "qemu-system-x86_64", "syslinux")):
        print("SKIP part: no libvirtd/QEMU here (tools/deps.sh installs them)")
        return
    guest = h.guest_image()
    tmp = tempfile.mkdtemp(prefix="hvwg-run-")
    libvirtd, uri, ok = h.start_libvirtd(tmp)
    try:
        h.check(ok, "a private libvirtd")
        with h.Env(conf_extra={"Machine": {"LibvirtURI": uri, "Hypervisor": "qemu", "ScratchPerCoreGiB": "1",
                                           "MemoryPerCoreMiB": "128"}}) as env:
            src = os.path.join(env.src, "guest.img")
            shutil.copy(guest, src)
            rc, res, err = env.fetch("file://" + src, "guest", raw=True)
            h.check(rc == 0, "the guest image " + err.strip())
            data = os.path.join(env.src, "data.txt")
            open(data, "w").write("data from the host\n")
            t0 = time.time()
            p = run(env, "--image=guest", "--env", "GREETING=hi there", "--file", f"data.txt={data}", "--",
                    "sh", "-c", 'nproc; echo hello; echo "$GREETING"; cat data.txt; pwd; exit 3', extra_env={"SLURM_CPUS_ON_NODE": "2"})
            out, err = p.communicate(timeout=240)
            h.check(p.returncode == 3, f"the command's exit status: {p.returncode} ({time.time() - t0:.0f} s) {err.strip()[-300:]}")
            h.check(out == "2\nhello\nhi there\ndata from the host\n/scratch\n",
                    f"its output, only its output: 2 CPUs, --env, --file, on the scratch disk: {out!r}")
            h.check(h.wait_for(lambda: not machines(env), 30), "the VM is gone")
            words = ["a b", "it's", "$HOME `x`", "line\nbreak", "caf\u00e9", "", "--opt"]
            p = run(env, "--image=guest", "--cores=1", "--", "printf", "[%s]", *words)
            out, err = p.communicate(timeout=240)
            h.check(p.returncode == 0 and out == "".join(f"[{w}]" for w in words),
                    f"arguments arrive exactly as given: {out!r} {err.strip()[-200:]}")
            h.check(h.wait_for(lambda: not machines(env), 30), "the VM is gone")
    finally:
        h.stop_process(libvirtd)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    lifecycle()
    real_guest()
