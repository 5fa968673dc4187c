"""Threat: set the times of a file outside the workspace (backdate a
planted file, hide a change from `make` or a backup): utimensat by path,
futimens on an fd opened read-only, and the older utimes and utime.

Usage: times_outside.py utimensat|futimens|utimes|utime PATH   (x86_64 numbers)
Prints "times: ok ..." or "times: ERRNO".
"""

import ctypes
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_UTIME = 132
SYS_UTIMES = 235
SYS_UTIMENSAT = 280
AT_FDCWD = -100
EPOCH = 86400  # 1970-01-02: unmistakable


def set_times(variant, path):
    cpath = ctypes.c_char_p(os.fsencode(path))
    if variant == "utimensat":
        ts = ctypes.create_string_buffer(struct.pack("<qqqq", EPOCH, 0, EPOCH, 0))
        raw_syscall(SYS_UTIMENSAT, AT_FDCWD, cpath, ts, 0)
    elif variant == "futimens":
        fd = os.open(path, os.O_RDONLY)
        try:
            ts = ctypes.create_string_buffer(struct.pack("<qqqq", EPOCH, 0, EPOCH, 0))
            raw_syscall(SYS_UTIMENSAT, fd, None, ts, 0)
        finally:
            os.close(fd)
    elif variant == "utimes":
        tv = ctypes.create_string_buffer(struct.pack("<qqqq", EPOCH, 0, EPOCH, 0))
        raw_syscall(SYS_UTIMES, cpath, tv)
    else:
        buf = ctypes.create_string_buffer(struct.pack("<qq", EPOCH, EPOCH))
        raw_syscall(SYS_UTIME, cpath, buf)
    return int(os.stat(path).st_mtime)


x86_64_only()
report("times", lambda: set_times(sys.argv[1], sys.argv[2]))
sys.exit(DONE)
