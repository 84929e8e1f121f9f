"""The context disk through the bus (test:///default): CreateMachine with user_data, meta_data,
network_config, context_files and context_vars gives MachineRoot/NAME/context.iso (0600, label
cidata, exactly the files, instance-id = the machine's UUID), its size in GetMachine and nothing
of its contents in any reply or log line; every bad name, key, type and an oversize context is
refused before anything is made; the disk goes with the machine."""
import json, os, subprocess, sys
sys.path.insert(0, os.path.dirname(__file__))
import harness as h

SECRET = "TOKEN-8c1f5e0a-do-not-log"


def iso_files(iso):
    out = subprocess.run(["isoinfo", "-R", "-f", "-i", iso], capture_output=True, text=True, check=True).stdout
    return sorted(l.lstrip("/") for l in out.split())


def iso_read(iso, name):
    return subprocess.run(["isoinfo", "-R", "-i", iso, "-x", "/" + name], capture_output=True, check=True).stdout


def main():
    h.need(subprocess.run(["sh", "-c", "command -v isoinfo"], capture_output=True).returncode == 0,
           "isoinfo (genisoimage) is not installed (tools/deps.sh installs it)")
    with h.Env(conf_extra={"Machine": {"ScratchPerCoreGiB": "1", "MaxContextSize": "64K"}}) as env:
        img = h.make_mbr_image(os.path.join(env.src, "m.img"), mib=64)
        rc, res, err = env.fetch("file://" + h.gzip_file(img, img + ".gz"), "m")
        h.check(rc == 0, "an image " + err.strip())
        src = lambda name, text: (open(os.path.join(env.src, name), "wb").write(text.encode() if isinstance(text, str) else text),
                                  os.path.join(env.src, name))[1]
        ud = src("ud", f"#cloud-config\nwrite_files:\n - path: /etc/token\n   content: {SECRET}\n")
        nc = src("nc", "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n")
        prolog = src("prolog", "#!/bin/sh\necho prolog $SITE\n")
        blob = src("blob", bytes(range(256)) * 40)
        r = env.ctl("create", "m", "vm1", "--cores=1", "--no-start", f"--user-data={ud}", f"--network-config={nc}",
                    "--meta-data=role=worker", "--meta-data=local-hostname=node-1", f"--context-file=prolog.sh={prolog}",
                    f"--context-file=data.bin={blob}", "--context-var=SITE=CERN 'T0'", f"--context-var=SECRET={SECRET}")
        h.check(r.returncode == 0, "create with a context " + r.stderr.strip())
        iso = os.path.join(env.machines, "vm1", "context.iso")
        h.check(os.path.exists(iso) and os.stat(iso).st_mode & 0o777 == 0o600, "context.iso, mode 0600")
        blk = subprocess.run(["blkid", "-o", "export", iso], capture_output=True, text=True).stdout
        h.check("LABEL=cidata" in blk.split() and "TYPE=iso9660" in blk.split(), "ISO 9660 labelled cidata: " + blk.replace("\n", " "))
        h.check(iso_files(iso) == ["context.sh", "data.bin", "meta-data", "network-config", "prolog.sh", "user-data"],
                f"exactly the files: {iso_files(iso)}")
        uuid = {x[0]: x for x in env.call("ListMachines")[0]}["vm1"][1]
        h.check(iso_read(iso, "meta-data").decode() == f'instance-id: "{uuid}"\nrole: "worker"\nlocal-hostname: "node-1"\n',
                "meta-data: instance-id is the machine's UUID, the caller's local-hostname wins")
        h.check(iso_read(iso, "user-data") == open(ud, "rb").read() and iso_read(iso, "network-config") == open(nc, "rb").read() and
                iso_read(iso, "data.bin") == open(blob, "rb").read(), "user-data, network-config and a binary file byte for byte")
        sh = subprocess.run(["sh", "-c", ". /dev/stdin; printf '%s|%s' \"$SITE\" \"$SECRET\""], input=iso_read(iso, "context.sh"),
                            capture_output=True)
        h.check(sh.stdout.decode() == f"CERN 'T0'|{SECRET}", "context.sh sourced by sh gives the values back")
        d = {k: v["data"] for k, v in json.loads(env.busctl("--json=short", "call", h.BUS, h.OBJ, h.MGR, "GetMachine", "s", "vm1")
                                                 .stdout)["data"][0].items()}
        h.check(d["context_bytes"] == os.path.getsize(iso), f"GetMachine: context_bytes {d['context_bytes']}")
        everything = env.log() + json.dumps(d) + env.ctl("--json", "show", "vm1").stdout + env.ctl("--json", "machines").stdout
        h.check(SECRET not in everything, "the secret is in no log line and no reply")
        h.check('"user_data"=<secret>' in env.log() and '"context_vars"=<secret>' in env.log(), "the audit line shows <secret>")

        # refusals: nothing made
        before = h.machine_dirs(env.machines)
        for args, words in (([f"--context-file=../x={prolog}"], "invalid context file name \"../x\""),
                            ([f"--context-file=.hidden={prolog}"], "invalid context file name"),
                            ([f"--context-file=user-data={prolog}"], "invalid context file name \"user-data\""),
                            (["--context-var=lower=1"], "invalid context_vars key \"lower\""),
                            (["--meta-data=a b=1"], "invalid meta_data key"),
                            ([f"--context-file=context.sh={prolog}", "--context-var=A=1"], "context.sh is given both"),
                            ([f"--context-file=big={src('big', b'x' * 70000)}"], "the context is too large: 700"),
                            (["--context-var=NOEQUALS"], "--context-var takes KEY=VALUE"),
                            (["--user-data=/nonexistent"], "cannot read /nonexistent")):
            r = env.ctl("create", "m", "vm-x", "--cores=1", "--no-start", *args)
            h.check(r.returncode == 2 and words in r.stderr, f"{args[0][:40]}: exit 2, {r.stderr.strip()[:150]}")
        r = env.call("CreateMachine", "ssua{sv}", "m", "vm-x", "1", "2", "start", "b", "false", "context_files", "a{ss}", "1", "a", "b",
                     check=False)
        h.check("context_files must have type 'a{say}', got 'a{ss}'" in r.stderr, "context_files as a{ss}: refused")
        r = env.call("CreateMachine", "ssua{sv}", "m", "vm-x", "1", "1", "user_data", "s", "#cloud-config", check=False)
        h.check("user_data must have type 'ay', got 's'" in r.stderr, "user_data as a string: refused")
        h.check(h.machine_dirs(env.machines) == before and "vm-x" not in {x[0] for x in env.call("ListMachines")[0]},
                "nothing made by the refused calls")

        # the image side: contrib/context/hvwg-context on this very disk, in a private mount namespace
        # (the boot test runs it in a real guest on the real CD-ROM). A kernel without isofs, like
        # this machine type's, cannot mount the disk: then the script reads the files extracted.
        svc = os.path.join(h.SRC, "contrib/context/hvwg-context")
        run_dir = os.path.join(env.tmp, "run-ctx")
        device = iso
        if "iso9660" not in open("/proc/filesystems").read() and subprocess.run(["modprobe", "-q", "isofs"]).returncode != 0:
            print("SKIP part: this kernel cannot mount ISO 9660 (no isofs): hvwg-context reads the files extracted instead")
            device = os.path.join(env.tmp, "extracted")
            os.makedirs(device)
            for name in iso_files(iso):
                open(os.path.join(device, name), "wb").write(iso_read(iso, name))
        envv = dict(os.environ, HVWG_CONTEXT_DEVICE=device, HVWG_CONTEXT_DIR=run_dir)
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", svc, "prolog"], capture_output=True, text=True, env=envv)
        h.check(r.returncode == 0 and r.stdout == "prolog CERN 'T0'\n" and "running prolog.sh" in r.stderr,
                f"hvwg-context prolog: the disk copied, prolog.sh run with context.sh's variables ({r.stdout.strip()} {r.stderr.strip()[-120:]})")
        h.check(os.stat(run_dir).st_mode & 0o777 == 0o700 and sorted(os.listdir(run_dir)) ==
                [".done", "context.sh", "data.bin", "meta-data", "network-config", "prolog.sh", "user-data"],
                "the context kept in a 0700 directory")
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", svc, "epilog"], capture_output=True, text=True, env=envv)
        h.check(r.returncode == 0 and "no epilog.sh in the context" in r.stderr, "hvwg-context epilog without an epilog.sh: nothing to do")
        r = subprocess.run(["sh", svc, "prolog"], capture_output=True, text=True,
                           env=dict(os.environ, HVWG_CONTEXT_DIR=os.path.join(env.tmp, "none"), HVWG_CONTEXT_WAIT="1",
                                    PATH="/usr/sbin:/usr/bin:/sbin:/bin"))
        h.check(r.returncode == 0 and "no context disk" in r.stderr, "hvwg-context without a context disk: exit 0, says so")

        # no context: no disk
        r = env.ctl("create", "m", "vm2", "--cores=1", "--no-start")
        h.check(not os.path.exists(os.path.join(env.machines, "vm2", "context.iso")), "no context given: no context disk")
        env.ctl("destroy", "vm1")
        h.check(not os.path.exists(os.path.join(env.machines, "vm1")), "destroy removes the context disk with the machine")


if __name__ == "__main__":
    main()
