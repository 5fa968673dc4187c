"""Threat: destroy a file outside the workspace without writing to it:
truncate(2) by path, open with O_TRUNC, or creat(2).

Usage: write_truncate.py truncate|o-trunc|creat OUTSIDE_FILE   (x86_64)
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_CREAT = 85


def creat(path):
    fd = raw_syscall(SYS_CREAT, ctypes.c_char_p(os.fsencode(path)), 0o644)
    os.close(fd)
    return fd


x86_64_only()
variant, target = sys.argv[1], sys.argv[2]
if variant == "truncate":
    report("truncate", lambda: os.truncate(target, 0))
elif variant == "o-trunc":
    report("truncate", lambda: os.close(os.open(target, os.O_WRONLY | os.O_TRUNC)))
else:
    report("truncate", lambda: creat(target))
sys.exit(DONE)
