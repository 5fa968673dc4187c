"""Threat: destroy a file outside the workspace without writing to it:
truncate(2) by path, open with O_TRUNC, or creat(2).

Usage: write_truncate.py truncate|o-trunc|creat OUTSIDE_FILE   (x86_64)
"""

import ctypes
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
SYS_CREAT = 85

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def creat(path):
    fd = libc.syscall(
        ctypes.c_long(SYS_CREAT), ctypes.c_char_p(os.fsencode(path)), ctypes.c_long(0o644)
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    os.close(fd)
    return fd


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
variant, target = sys.argv[1], sys.argv[2]
if variant == "truncate":
    report("truncate", lambda: os.truncate(target, 0))
elif variant == "o-trunc":
    report("truncate", lambda: os.close(os.open(target, os.O_WRONLY | os.O_TRUNC)))
else:
    report("truncate", lambda: creat(target))
sys.exit(DONE)
