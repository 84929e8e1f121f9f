"""Batch jobs in VMs on a real Slurm (Debian 12's slurmctld, slurmd, munge 22.05): a one-node
cluster on this host with 2 CPUs, started here with its own configuration (munged, slurmctld
-D, slurmd -D), hvwgd on its private bus with a real libvirtd (QEMU, TCG), the boot test's
guest as the image. Cases: a job's command runs in a VM with the job's 2 CPUs, its output in
the job's output file and its exit code 3 in Slurm's accounting (scontrol, jobcomp/filetxt);
scancel of a running job (VM gone in seconds, job CANCELLED); kill -9 of hvwg-run inside a job
(hvwgd removes the VM bound to it); --timeout (exit 124, VM gone); two jobs at once (two VMs,
each with its own scratch disk). No machine is ever left."""
import os, re, shutil, signal, socket, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
import harness as h
from test_run import RUN

TOOLS = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "scontrol", "scancel", "squeue", "libvirtd", "virsh", "qemu-system-x86_64")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slurm:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "slurm")
        os.makedirs(os.path.join(self.dir, "state"))
        os.makedirs(os.path.join(self.dir, "spool"))
        self.host = socket.gethostname().split(".")[0]
        self.munge_sock = os.path.join(self.dir, "munge.sock")
        key = os.path.join(self.dir, "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.jobcomp = os.path.join(self.dir, "jobcomp.txt")
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=hvwgtest
SlurmctldHost={self.host}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={self.munge_sock}
CredType=cred/munge
StateSaveLocation={self.dir}/state
SlurmdSpoolDir={self.dir}/spool
SlurmctldPidFile={self.dir}/slurmctld.pid
SlurmdPidFile={self.dir}/slurmd.pid
SlurmctldLogFile={self.dir}/slurmctld.log
SlurmdLogFile={self.dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=3600
KillWait=5
JobCompType=jobcomp/filetxt
JobCompLoc={self.jobcomp}
Prolog={self.dir}/prolog
Epilog={self.dir}/epilog
SchedulerType=sched/builtin
NodeName={self.host} CPUs=2 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.procs = []

    def hooks(self, bus_address, image_url):
        """contrib/slurm's Prolog and Epilog, pointed at the test's bus (DBUS_SYSTEM_BUS_ADDRESS)."""
        for hook in ("prolog", "epilog"):
            with open(os.path.join(self.dir, hook), "w") as f:
                f.write(f"#!/bin/sh\nexport DBUS_SYSTEM_BUS_ADDRESS='{bus_address}' HVWG_IMAGE_URL='{image_url}' "
                        f"PATH='{os.path.dirname(h.HVWGCTL)}':$PATH SLURM_CONF='{self.conf}'\n"
                        f"exec sh '{os.path.join(h.SRC, 'contrib/slurm', hook + '.sh')}'\n")
            os.chmod(os.path.join(self.dir, hook), 0o755)

    def start(self):
        key = os.path.join(self.dir, "munge.key")
        logs = open(os.path.join(self.dir, "daemons.log"), "w")
        self.procs.append(subprocess.Popen(["munged", "-F", "-f", "--socket=" + self.munge_sock, "--key-file=" + key,
                                            "--pid-file=" + os.path.join(self.dir, "munged.pid"),
                                            "--seed-file=" + os.path.join(self.dir, "munged.seed")], stdout=logs, stderr=logs))
        h.wait_for(lambda: os.path.exists(self.munge_sock), 10)
        self.procs.append(subprocess.Popen(["slurmctld", "-D", "-i", "-f", self.conf], stdout=logs, stderr=logs, env=self.env))
        time.sleep(1)
        self.procs.append(subprocess.Popen(["slurmd", "-D", "-f", self.conf, "-N", self.host], stdout=logs, stderr=logs, env=self.env))

    def ready(self):
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=self.env)
        return r.returncode == 0 and r.stdout.strip() == "idle"

    def sbatch(self, *args, cwd):
        r = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, env=self.env, cwd=cwd)
        if r.returncode != 0:
            raise AssertionError("sbatch failed: " + r.stderr)
        return r.stdout.strip().split(";")[0]

    def job(self, jid):
        r = subprocess.run(["scontrol", "show", "job", jid], capture_output=True, text=True, env=self.env)
        return dict(re.findall(r"(\w+)=(\S+)", r.stdout))

    def state(self, jid):
        return self.job(jid).get("JobState")

    def wait_done(self, jid, timeout=240):
        return h.wait_for(lambda: self.state(jid) in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"), timeout, 0.5)

    def stop(self):
        for p in reversed(self.procs):
            h.stop_process(p)

    def logs(self):
        out = ""
        for f in ("slurmctld.log", "slurmd.log", "daemons.log"):
            p = os.path.join(self.dir, f)
            if os.path.exists(p):
                out += f"---- {f} ----\n" + open(p, errors="replace").read()[-2000:]
        return out


def main():
    h.need(os.geteuid() == 0, "needs root (slurmd, libvirtd)")
    for t in TOOLS:
        h.need(shutil.which(t), f"{t} is not installed (tools/deps.sh installs slurmctld, slurmd, munge, libvirt, QEMU)")
    guest = h.guest_image()
    tmp = tempfile.mkdtemp(prefix="hvwg-slurm-")
    os.chmod(tmp, 0o755)
    libvirtd, uri, ok = h.start_libvirtd(tmp)
    slurm = None
    try:
        h.check(ok, "a private libvirtd")
        slurm = Slurm(tmp)
        with h.Env(conf_extra={"Machine": {"LibvirtURI": uri, "Hypervisor": "qemu", "ScratchPerCoreGiB": "1",
                                           "MemoryPerCoreMiB": "128"}}) as env:
            slurm.hooks(env.address, "file://" + env.src)
            slurm.start()
            h.check(h.wait_for(slurm.ready, 60, 0.5), "a one-node Slurm cluster is up (munged, slurmctld, slurmd; 2 CPUs)")
            src = os.path.join(env.src, "guest.img")
            shutil.copy(guest, src)
            rc, res, err = env.fetch("file://" + src, "guest", raw=True)
            h.check(rc == 0, "the guest image " + err.strip())
            work = os.path.join(tmp, "jobs")
            os.makedirs(work)
            run = f"{RUN} --bus-address={env.address} --image=guest"

            def machines():
                return {x[0]: x for x in env.call("ListMachines")[0]}

            # 1. a job's command in a VM with the job's CPUs; output and exit code back in Slurm
            t0 = time.time()
            jid = slurm.sbatch("-c", "2", "-o", "job-%j.out", "--wrap", f"{run} -- sh -c 'nproc; echo hello; exit 3'", cwd=work)
            h.check(slurm.wait_done(jid), f"job {jid} ended ({time.time() - t0:.0f} s)")
            out = open(os.path.join(work, f"job-{jid}.out")).read()
            info = slurm.job(jid)
            h.check(out == "2\nhello\n", f"the job's output file holds the command's output (2 CPUs, hello): {out!r}")
            h.check(info.get("ExitCode") == "3:0" and info.get("JobState") == "FAILED", f"scontrol: ExitCode {info.get('ExitCode')}, "
                    f"{info.get('JobState')}")
            comp = open(slurm.jobcomp).read() if os.path.exists(slurm.jobcomp) else ""
            h.check(re.search(rf"JobId={jid} .*JobState=FAILED.*ExitCode=3:0", comp) is not None, "jobcomp/filetxt: exit code 3")
            h.check(h.wait_for(lambda: not machines(), 30), "no machine left")

            # 2. scancel of a running job: the VM goes within seconds
            jid = slurm.sbatch("-c", "1", "-o", "job-%j.out", "--wrap", f"{run} -- sleep 600", cwd=work)
            name = h.wait_for(lambda: next((n for n, x in machines().items() if x[6] == "running" and f"-{jid}-" in n), None), 120)
            h.check(name and name.startswith(f"slurm-{jid}-"), f"job {jid} runs in machine {name}")
            time.sleep(2)
            t0 = time.time()
            subprocess.run(["scancel", jid], env=slurm.env, check=True)
            gone = h.wait_for(lambda: name not in machines(), 30)
            h.check(gone and slurm.wait_done(jid, 60) and slurm.state(jid) == "CANCELLED",
                    f"scancel: the VM gone in {time.time() - t0:.1f} s, the job {slurm.state(jid)}")

            # 3. kill -9 of hvwg-run inside a job: hvwgd removes the VM bound to it
            jid = slurm.sbatch("-c", "1", "-o", "job-%j.out", "--wrap", f"{run} -- sleep 600", cwd=work)
            name = h.wait_for(lambda: next((n for n, x in machines().items() if x[6] == "running" and f"-{jid}-" in n), None), 120)
            pids = subprocess.run(["pgrep", "-f", f"^{RUN} --bus-address={env.address}"], capture_output=True, text=True).stdout.split()
            h.check(name and len(pids) == 1, f"job {jid}: machine {name}, hvwg-run pid {pids}")
            t0 = time.time()
            os.kill(int(pids[0]), signal.SIGKILL)
            h.check(h.wait_for(lambda: name not in machines(), 20), f"hvwg-run killed with SIGKILL: the VM gone in {time.time() - t0:.1f} s")
            slurm.wait_done(jid, 60)

            # 4. --timeout: exit 124, the VM gone
            jid = slurm.sbatch("-c", "1", "-o", "job-%j.out", "--wrap", f"{run} --timeout=8s -- sleep 600", cwd=work)
            h.check(slurm.wait_done(jid, 180) and slurm.job(jid).get("ExitCode") == "124:0",
                    f"--timeout: the job's exit code {slurm.job(jid).get('ExitCode')}")
            h.check(h.wait_for(lambda: not machines(), 30), "no machine left")

            # 6. contrib/slurm: the Prolog fetches the image a job names; the Epilog removes what a job left
            h.gzip_file(src, os.path.join(env.src, "guest2.img.gz"))
            jid = slurm.sbatch("-c", "1", "-o", "job-%j.out", "--comment=hvwg-image=guest2", "--wrap",
                               f"{h.HVWGCTL} --bus-address={env.address} --no-legend images; "
                               f"{h.HVWGCTL} --bus-address={env.address} -q create guest slurm-$SLURM_JOB_ID-left --cores=1 --no-start",
                               cwd=work)
            h.check(slurm.wait_done(jid, 120), f"job {jid} ended")
            out = open(os.path.join(work, f"job-{jid}.out")).read()
            h.check(re.search(r"^guest2 ", out, re.M) is not None, "the Prolog fetched the image named in the job's comment before it ran")
            h.check(h.wait_for(lambda: f"slurm-{jid}-left" not in machines(), 30), "the Epilog removed the machine the job left")

            # 5. two jobs at once: two VMs, each with its own scratch disk
            script = "df -k . | tail -1; nproc; echo done"
            jids = [slurm.sbatch("-c", "1", "-o", "job-%j.out", "--wrap", f"{run} -- sh -c \"{script}\"", cwd=work) for _ in range(2)]
            both = h.wait_for(lambda: len([n for n, x in machines().items() if x[6] == "running"]) == 2, 120, 0.2)
            h.check(both, "two VMs run at once")
            h.check(all(slurm.wait_done(j) for j in jids), "both jobs ended")
            outs = [open(os.path.join(work, f"job-{j}.out")).read() for j in jids]
            h.check(all(re.fullmatch(r"/dev/vd\S+ .* /scratch\n1\ndone\n", o) for o in outs) and
                    all(slurm.job(j).get("ExitCode") == "0:0" for j in jids),
                    f"both jobs ran their command with 1 CPU on a scratch disk: {outs}")
            h.check(h.wait_for(lambda: not machines(), 30), "no machine left")
    except BaseException:
        if slurm:
            print(slurm.logs())
        raise
    finally:
        if slurm:
            slurm.stop()
        h.stop_process(libvirtd)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
