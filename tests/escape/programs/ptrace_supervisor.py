"""Threat: take over the supervisor with ptrace (PTRACE_ATTACH, or
PTRACE_SEIZE, which does not stop it): a tracer can rewrite the
supervisor's decisions or read its memory.  If an attach works, detach at
once so the supervisor keeps running.

Finds the supervisor as the nearest ancestor whose command line names
agentsh_ipy.cli (else the parent), prints "supervisor=PID", and ends with
"probe: ERRNO", an open of ~/.ssh/id_rsa that a live supervisor denies.
(x86_64 syscall numbers)
"""

import ctypes
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, report

DONE = 42
SYS_PTRACE = 101
PTRACE_ATTACH = 16
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def ptrace(request, pid):
    r = libc.syscall(
        ctypes.c_long(SYS_PTRACE), ctypes.c_long(request), ctypes.c_long(pid), None, None
    )
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def attach(pid, request):
    ptrace(request, pid)
    # It worked: leave the supervisor as it was.
    if request == PTRACE_SEIZE:
        ptrace(PTRACE_INTERRUPT, pid)
    os.waitpid(pid, 0x40000000)  # __WALL
    ptrace(PTRACE_DETACH, pid)
    return "attached"


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
report("attach", lambda: attach(sup, PTRACE_ATTACH))
report("seize", lambda: attach(sup, PTRACE_SEIZE))
report("probe", probe)
sys.exit(DONE)
