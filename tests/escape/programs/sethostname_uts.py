"""Threat: change the host name (issue 17: sethostname went through). To
keep the host's own name safe, the program first makes a UTS namespace of
its own (allowed to root outside the sandbox) and calls sethostname only
inside it, or when it lacks CAP_SYS_ADMIN (uid 65534, and root in the
sandbox, which drops it: the kernel refuses it anyway, and the sandbox must
refuse it first, audited).

Usage: sethostname_uts.py
Prints "unshare: ok|ERRNO" and "sethostname: ok ...|ERRNO".
"""

import ctypes
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
CLONE_NEWUTS = 0x04000000

libc = ctypes.CDLL(None, use_errno=True)


def check(r):
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def powerless():
    """No CAP_SYS_ADMIN (uid 65534, or root in the sandbox, which drops it):
    sethostname cannot touch any namespace."""
    with open("/proc/self/status") as f:
        eff = int(next(x for x in f if x.startswith("CapEff:")).split()[1], 16)
    return not eff & 1 << 21


own_uts = report("unshare", lambda: check(libc.unshare(CLONE_NEWUTS))) is not None
if own_uts or powerless():
    report("sethostname", lambda: (socket.sethostname("agentsh-escape"), socket.gethostname())[1])
sys.exit(DONE)
