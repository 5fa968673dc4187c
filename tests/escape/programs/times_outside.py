"""Threat: set the times of a file outside the workspace (backdate a
planted file, hide a change from `make` or a backup): utimensat by path,
futimens on an fd opened read-only, and the older utimes and utime.

Usage: times_outside.py utimensat|futimens|utimes|utime PATH   (x86_64 numbers)
Prints "times: ok ..." or "times: ERRNO".
"""

import ctypes
import os
import platform
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
SYS_UTIME = 132
SYS_UTIMES = 235
SYS_UTIMENSAT = 280
AT_FDCWD = -100
EPOCH = 86400  # 1970-01-02: unmistakable

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(nr, *args):
    r = libc.syscall(
        ctypes.c_long(nr), *(ctypes.c_long(a) if isinstance(a, int) else a for a in args)
    )
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def set_times(variant, path):
    cpath = ctypes.c_char_p(os.fsencode(path))
    if variant == "utimensat":
        ts = ctypes.create_string_buffer(struct.pack("<qqqq", EPOCH, 0, EPOCH, 0))
        call(SYS_UTIMENSAT, AT_FDCWD, cpath, ts, 0)
    elif variant == "futimens":
        fd = os.open(path, os.O_RDONLY)
        try:
            ts = ctypes.create_string_buffer(struct.pack("<qqqq", EPOCH, 0, EPOCH, 0))
            call(SYS_UTIMENSAT, fd, None, ts, 0)
        finally:
            os.close(fd)
    elif variant == "utimes":
        tv = ctypes.create_string_buffer(struct.pack("<qqqq", EPOCH, 0, EPOCH, 0))
        call(SYS_UTIMES, cpath, tv)
    else:
        buf = ctypes.create_string_buffer(struct.pack("<qq", EPOCH, EPOCH))
        call(SYS_UTIME, cpath, buf)
    return int(os.stat(path).st_mtime)


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
report("times", lambda: set_times(sys.argv[1], sys.argv[2]))
sys.exit(DONE)
