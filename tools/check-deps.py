#!/usr/bin/env python3
"""Every external command the tests and tools run is installed by tools/deps.sh on a minimal
Debian 12 (debootstrap --variant=minbase: the Essential and required packages, and apt).

It lists the commands: in Python, every list literal whose first string names an executable
(["cmp", …], ["virsh", …]); in shell scripts, every word in a command position (line start,
after ; | && || ( $( then do else ! timeout N exec), heredoc bodies and quoted text left out.
For each, looked up in the system PATH, dpkg's file lists name the package; that package must be in the dependency closure of
deps.sh's list plus Essential packages and apt. Prints the table; exits 1 on a gap."""
import os, re, shutil, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# run in the boot test's guests (their own root filesystems), not on this host
GUEST_SCRIPTS = {"tests/boot/systemd/guest-check.sh"}
# Commands a test needs that no machine has before deps.sh runs. Words in a command position
# that are not on PATH are mostly not commands (shell functions, words of a message), so they
# are skipped; these are looked for even when absent, so that a gap in deps.sh shows here and
# not as a test's SKIP on a fresh machine.
NOT_PREINSTALLED = {"lintian", "rpmspec", "debootstrap", "dpkg-buildpackage"}
BUILTINS = set("""if then else elif fi for in do done while until case esac function return exit local export set
shift cd echo printf read test [ [[ true false eval exec trap wait source . unset declare mapfile readonly
break continue kill command type getopts let pwd umask ulimit hash times jobs shopt time select coproc
alias printf""".split())


def files():
    for top in ("tests", "tools", "bench", ".ci"):
        for d, _, fs in os.walk(os.path.join(ROOT, top)):
            for f in fs:
                p = os.path.join(d, f)
                rel = os.path.relpath(p, ROOT)
                if rel in GUEST_SCRIPTS or "/corpus/" in rel:
                    continue
                if f.endswith((".py", ".sh")) or rel == ".ci/run":
                    yield rel


def py_commands(text):
    return set(re.findall(r'\[\s*"([A-Za-z0-9][A-Za-z0-9_.+-]*)"', text))


CMD_POS = re.compile(r'(?:^|[;|&(]|\$\(|\bthen\s|\bdo\s|\belse\s|!\s|\btimeout\s+\S+\s|\bexec\s)\s*([A-Za-z0-9][A-Za-z0-9_.+-]*)(?=\s|$|;|\))')


def sh_commands(text):
    out, heredoc = set(), None
    for line in text.splitlines():
        if heredoc:
            if line.strip() == heredoc:
                heredoc = None
            continue
        m = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", line)
        code = re.sub(r"'[^']*'", "''", line)              # single-quoted text is data
        code = re.sub(r'"(?:[^"\\$]|\\.)*"', '""', code)     # so is double-quoted text without $(
        code = re.sub(r"(^|\s)#.*", "", code)
        out |= set(CMD_POS.findall(code))
        if m:
            heredoc = m.group(1)
    return out


# the PATH of a minbase root (not this shell's: a pyenv or /usr/local copy is not what CI has)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def which(c):
    return shutil.which(c, path=SYSTEM_PATH)


def dpkg_owners():
    owners, info = {}, "/var/lib/dpkg/info"
    for f in os.listdir(info):
        if f.endswith(".list"):
            pkg = f[:-5].split(":")[0]
            for line in open(os.path.join(info, f), errors="replace"):
                owners.setdefault(line.rstrip("\n"), pkg)
    return owners


def package_of(path, owners):
    cands = {path, os.path.realpath(path)}
    for c in list(cands):
        for a, b in (("/usr/bin/", "/bin/"), ("/usr/sbin/", "/sbin/")):
            if c.startswith(a):
                cands.add(b + c[len(a):])
            elif c.startswith(b):
                cands.add(a + c[len(b):])
    for c in sorted(cands):
        if c in owners:
            return owners[c]
    return None


def deps_packages():
    text = open(os.path.join(ROOT, "tools/deps.sh")).read()
    body = re.search(r"PKGS=\((.*?)\n\)", text, re.S).group(1)
    return {w for line in body.splitlines() for w in line.split("#")[0].split()}


def closure(roots):
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--installed", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", *sorted(roots)],
                       capture_output=True, text=True)
    names = {l.strip() for l in r.stdout.splitlines() if l and not l.startswith(" ")}
    return {n.split(":")[0] for n in names} | set(roots)


def main():
    cmds = {}
    for rel in files():
        text = open(os.path.join(ROOT, rel), errors="replace").read()
        found = py_commands(text) if rel.endswith(".py") else sh_commands(text)
        for c in found:
            if c not in BUILTINS and which(c):
                cmds.setdefault(c, set()).add(rel)
            elif c in NOT_PREINSTALLED and rel.endswith(".sh"):
                cmds.setdefault(c, set()).add(rel)   # named but not installed here: must come from deps.sh
    # minbase: Essential and Priority: required packages, and apt
    essential = {l.split()[0] for l in subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Essential} ${Priority}\n"],
                                                      capture_output=True, text=True).stdout.splitlines()
                 if " yes " in l or l.endswith(" required")}
    ours = deps_packages()
    have = closure(ours | essential | {"apt"})
    gaps, owners = 0, dpkg_owners()
    for c in sorted(cmds):
        path = which(c)
        pkg = package_of(path, owners) if path else None
        if pkg is None:
            where = "built by the project" if path and path.startswith(ROOT) else "no package provides it"
            ok = path is not None and path.startswith(ROOT)
        else:
            ok = pkg in have
            where = pkg + ("" if ok else "  <-- not installed by tools/deps.sh on minbase")
        gaps += not ok
        print(f"{'ok  ' if ok else 'MISS'} {c:24} {where}   ({', '.join(sorted(cmds[c]))[:70]})")
    print(f"{len(cmds)} commands, {gaps} not provided")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
