"""Threat: take over the supervisor with ptrace (PTRACE_ATTACH, or
PTRACE_SEIZE, which does not stop it): a tracer can rewrite the
supervisor's decisions or read its memory.  If an attach works, detach at
once so the supervisor keeps running.

Finds the supervisor as the nearest ancestor whose command line names
agentsh_ipy.cli (else the parent), prints "supervisor=PID", and ends with
"probe: ERRNO", an open of ~/.ssh/id_rsa that a live supervisor denies.
(x86_64 syscall numbers)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, raw_syscall, report, x86_64_only

DONE = 42
SYS_PTRACE = 101
PTRACE_ATTACH = 16
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207


def ptrace(request, pid):
    return raw_syscall(SYS_PTRACE, request, pid, None, None)


def attach(pid, request):
    ptrace(request, pid)
    # It worked: leave the supervisor as it was.
    if request == PTRACE_SEIZE:
        ptrace(PTRACE_INTERRUPT, pid)
    os.waitpid(pid, 0x40000000)  # __WALL
    ptrace(PTRACE_DETACH, pid)
    return "attached"


x86_64_only()
sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
report("attach", lambda: attach(sup, PTRACE_ATTACH))
report("seize", lambda: attach(sup, PTRACE_SEIZE))
report("probe", probe)
sys.exit(DONE)
