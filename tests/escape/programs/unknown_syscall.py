"""Threat: a syscall the sandbox has no entry for (one newer than its
table, or a number Linux has not assigned yet) must not simply run: it is
refused (ENOSYS, as for a call the kernel lacks: libc falls back) and
audited (issue 17: an allowlist, not a denylist).

Usage: unknown_syscall.py NR...   (x86_64 numbers)
Prints "nrNR: ok ..." or "nrNR: ERRNO" for each.
"""

import ctypes
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(nr):
    r = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(0) for _ in range(6)))
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
for arg in sys.argv[1:]:
    report(f"nr{arg}", lambda nr=int(arg): call(nr))
sys.exit(DONE)
