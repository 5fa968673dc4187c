"""Threat: overwrite a file outside the workspace by atomically swapping it
with one inside (renameat2 RENAME_EXCHANGE): no open, no create, no
delete outside, and the outside name keeps existing.

Usage: write_rename_exchange.py OUTSIDE_FILE   (cwd: the workspace; x86_64)
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_RENAMEAT2 = 316
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def exchange(a, b):
    return raw_syscall(
        SYS_RENAMEAT2,
        AT_FDCWD,
        ctypes.c_char_p(os.fsencode(a)),
        AT_FDCWD,
        ctypes.c_char_p(os.fsencode(b)),
        RENAME_EXCHANGE,
    )


x86_64_only()
with open("mine", "w") as f:
    f.write("planted by the sandbox\n")
report("exchange", lambda: exchange("mine", sys.argv[1]))
sys.exit(DONE)
