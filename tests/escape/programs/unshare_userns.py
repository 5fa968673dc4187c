"""Threat: become "root" in a new user namespace (unshare(CLONE_NEWUSER) or
clone(CLONE_NEWUSER)), the first step of most kernel exploits and of
mounting over the file system.

Usage: unshare_userns.py unshare|unshare-net|clone   (x86_64 syscall numbers)
Prints "userns: ok ..." or "userns: ERRNO".
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_CLONE = 56
SYS_UNSHARE = 272
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


def unshare(flags):
    raw_syscall(SYS_UNSHARE, flags)
    with open("/proc/self/uid_map") as f:
        return f.read().strip()


def clone_userns():
    sys.stdout.flush()
    # Raw clone with a NULL stack behaves like fork; the child leaves at once.
    pid = raw_syscall(SYS_CLONE, CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return f"child {pid} ran in a new user namespace"


x86_64_only()
variant = sys.argv[1]
if variant == "unshare":
    report("userns", lambda: unshare(CLONE_NEWUSER))
elif variant == "unshare-net":
    report("userns", lambda: unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET))
else:
    report("userns", clone_userns)
sys.exit(DONE)
