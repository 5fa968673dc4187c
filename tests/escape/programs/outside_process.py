"""Threat: change a process outside the sandbox by its pid without a signal
(issue 17): its resource limits (RLIMIT_CPU 0 on the supervisor killed it,
RLIMIT_NPROC 0 hung the run) or its priority.

Usage: outside_process.py prlimit|setpriority PID|supervisor
Prints "target=PID" and "change: ok" or "change: ERRNO". prlimit sets
RLIMIT_NOFILE to 3 (a supervisor that got it could open nothing more).
"""

import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, report

DONE = 42


def change(variant, pid):
    if variant == "prlimit":
        return resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, 3))
    return os.setpriority(os.PRIO_PROCESS, pid, 19)


variant = sys.argv[1]
pid = find_supervisor() if sys.argv[2] == "supervisor" else int(sys.argv[2])
print(f"target={pid}", flush=True)
report("change", lambda: change(variant, pid))
if sys.argv[2] == "supervisor":
    report("probe", probe)  # the supervisor still decides (it can open files)
sys.exit(DONE)
