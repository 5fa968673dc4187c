"""Threat: leave the tree (issue 17). A child made with clone(CLONE_UNTRACED)
is not followed by ptrace, so the supervisor never learns of it: it
outlives the command and writes, seconds after the command has returned,
through an fd opened before (its own opens would be trapped).

Usage: clone_untraced.py MARKER   (x86_64 numbers)
Prints "clone: ok PID" or "clone: ERRNO"; the child writes "late" into
MARKER about 1.5 s later.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_CLONE = 56
CLONE_UNTRACED = 0x00800000


def clone_untraced(fd):
    sys.stdout.flush()
    # Everything the child needs is made here: its own calls that the
    # filter traps would find no tracer (ptrace mode) or no supervisor.
    null = os.open(os.devnull, os.O_RDWR)
    # A raw clone with a NULL stack behaves like fork.
    pid = raw_syscall(SYS_CLONE, CLONE_UNTRACED | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        # Let go of the output pipes (whoever reads them waits for their end),
        # and of the session, then write long after the parent has gone.
        for std in (0, 1, 2):
            os.dup2(null, std)
        os.setsid()
        time.sleep(1.5)
        os.write(fd, b"late")
        os._exit(0)
    os.close(null)
    return pid


x86_64_only()
marker = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
report("clone", lambda: clone_untraced(marker))
sys.exit(DONE)
