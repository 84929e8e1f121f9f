"""Set-up shared by the Python benchmarks: the build's binaries (build/, unless the environment
names others) and the tests' harness (private bus, hvwgd, http server)."""
import os
import sys

top = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
build = os.path.join(top, "build")
sys.path.insert(0, os.path.join(top, "tests/integration"))
os.environ.setdefault("HVWG_SRC", top)
os.environ.setdefault("HVWGD", os.path.join(build, "hvwgd"))
os.environ.setdefault("HVWGCTL", os.path.join(build, "hvwgctl"))
os.environ.setdefault("HVWG_BUILD", build)
import harness  # noqa: E402,F401
