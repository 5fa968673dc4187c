"""Threat: read the variables the sandbox hid from us (tokens, keys) in the
environment of the supervisor, which still has them: /proc/PID/environ and
/proc/PID/task/TID/environ of the supervisor.

Prints "supervisor=PID", "environ: ..." , "task-environ: ...", "probe: ERRNO".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, report

DONE = 42


def read(path):
    with open(path, "rb") as f:
        return f.read().replace(b"\0", b"\n").decode(errors="replace")


sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
report("environ", lambda: read(f"/proc/{sup}/environ"))
report("task-environ", lambda: read(f"/proc/{sup}/task/{sup}/environ"))
report("probe", probe)
sys.exit(DONE)
