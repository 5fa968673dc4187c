"""Threat: read a secret the sandbox should hide from the environment: the
inherited os.environ, /proc/self/environ and every thread's environ.

Prints the environment, "environ: ..." and "task-environ: ...", and
"has-name: yes|no" for MY_SERVICE_TOKEN.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


def read(path):
    with open(path, "rb") as f:
        return f.read().replace(b"\0", b"\n").decode(errors="replace")


for name, value in sorted(os.environ.items()):
    print(f"env {name}={value}")
print("has-name:", "yes" if "MY_SERVICE_TOKEN" in os.environ else "no", flush=True)
report("environ", lambda: read("/proc/self/environ"))
tid = os.listdir("/proc/self/task")[0]
report("task-environ", lambda: read(f"/proc/self/task/{tid}/environ"))
sys.exit(DONE)
