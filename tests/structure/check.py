#!/usr/bin/env python3
"""The architecture's rules, checked in the source (issue 12): one definition of each bus name
and error name; error names spelled only in the mapping module; no daemon/*.c over 600 lines;
the job engine knows no kind, no bus and no manager; nothing below the bus calls back up into
it (bus -> jobs -> workers -> store/libvirt). Exits 1 with each breach named."""
import os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_LINES = 600
# who may include what: the upper layers
UPPER = {"manager.h": {"main.c", "manager.c", "bus.c", "bus_fetch.c", "bus_job.c", "bus_machine.c", "bus_subscription.c", "bus_contents.c", "bus_caller.c", "bus.h"},
         "bus.h": {"manager.c", "bus.c", "bus_fetch.c", "bus_job.c", "bus_machine.c", "bus_subscription.c", "bus_contents.c", "bus_caller.c"}}
JOB_ENGINE_ALLOWED = {"job.h", "loop.h", "log.h", "names.h", "util.h"}

fails = []


def src(d):
    for f in sorted(os.listdir(os.path.join(ROOT, d))):
        if f.endswith((".c", ".h")):
            yield f, open(os.path.join(ROOT, d, f)).read()


files = {f"daemon/{f}": t for f, t in src("daemon")}
files.update({f"client/{f}": t for f, t in src("client")})

# 1. one definition of each name
defs = {}
for path, text in files.items():
    for m in re.finditer(r"^#define (HV_(?:BUS_NAME|OBJ_PATH|MANAGER_IFACE|JOB_IFACE|JOB_PREFIX|ERROR_\w+))\b", text, re.M):
        defs.setdefault(m.group(1), []).append(path)
for name, where in sorted(defs.items()):
    if len(where) != 1:
        fails.append(f"{name} defined {len(where)} times: {where}")
if "HV_BUS_NAME" not in defs or len([d for d in defs if d.startswith("HV_ERROR_")]) < 10:
    fails.append("names.h lost its definitions (the check would pass vacuously)")

# 2. the literals live in names.h (bus names) and errors.c (the mapping) only
for path, text in files.items():
    base = os.path.basename(path)
    if base != "names.h" and '"org.hepix.hvwg1' in text:
        fails.append(f"{path}: spells an org.hepix.hvwg1 name (use names.h)")
    if base != "errors.c" and '"org.freedesktop.DBus.Error.' in text:
        fails.append(f"{path}: spells a D-Bus error name (errors.c maps error kinds)")
    if path.startswith("daemon/") and base not in ("errors.c", "names.h") and re.search(r"\bHV_ERROR_\w+", text) \
            and not base.startswith("bus"):
        fails.append(f"{path}: uses an HV_ERROR_ name below the bus (raise an hv_kind with hv_fail)")
    if base.startswith("bus") and re.search(r"\bHV_ERROR_\w+|SD_BUS_ERROR_(?!NULL\b)\w+", text):
        fails.append(f"{path}: names an error directly (bus_fail with an hv_kind; errors.c names it)")

# 3. file sizes
for path, text in files.items():
    if path.startswith("daemon/") and path.endswith(".c") and text.count("\n") > MAX_LINES:
        fails.append(f"{path}: {text.count(chr(10))} lines (at most {MAX_LINES})")

# 4. the job engine
for base in ("job.c", "job.h"):
    text = files[f"daemon/{base}"]
    incs = set(re.findall(r'^#include "([^"]+)"', text, re.M)) - {"job.h"}
    if incs - JOB_ENGINE_ALLOWED:
        fails.append(f"daemon/{base} includes {sorted(incs - JOB_ENGINE_ALLOWED)} (the engine knows no kind, bus or manager)")
    up = re.search(r"\b((?:bus|manager|import|fetch|machine|machines|virt|store)_\w+)\s*\(", text)
    if up:
        fails.append(f"daemon/{base} calls up or across: {up.group(1)}")

# 5. layering: only the upper layers include manager.h / bus.h
for path, text in files.items():
    if not path.startswith("daemon/"):
        continue
    base = os.path.basename(path)
    for hdr, allowed in UPPER.items():
        if re.search(r'^#include "%s"' % re.escape(hdr), text, re.M) and base not in allowed:
            fails.append(f"{path} includes {hdr}: a lower module calls back up")

for f in fails:
    print("FAIL", f)
print(f"structure: {len(defs)} names defined once, {len(files)} files, {len(fails)} breaches")
sys.exit(1 if fails else 0)
