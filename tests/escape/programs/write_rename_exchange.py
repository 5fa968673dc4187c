"""Threat: overwrite a file outside the workspace by atomically swapping it
with one inside (renameat2 RENAME_EXCHANGE): no open, no create, no
delete outside, and the outside name keeps existing.

Usage: write_rename_exchange.py OUTSIDE_FILE   (cwd: the workspace; x86_64)
"""

import ctypes
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
SYS_RENAMEAT2 = 316
AT_FDCWD = -100
RENAME_EXCHANGE = 2

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def exchange(a, b):
    r = libc.syscall(
        ctypes.c_long(SYS_RENAMEAT2),
        ctypes.c_long(AT_FDCWD),
        ctypes.c_char_p(os.fsencode(a)),
        ctypes.c_long(AT_FDCWD),
        ctypes.c_char_p(os.fsencode(b)),
        ctypes.c_long(RENAME_EXCHANGE),
    )
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
with open("mine", "w") as f:
    f.write("planted by the sandbox\n")
report("exchange", lambda: exchange("mine", sys.argv[1]))
sys.exit(DONE)
