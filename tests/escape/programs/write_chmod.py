"""Threat: change the mode of a file outside the workspace (make it world
writable, or executable) by every chmod entry point: chmod(2) by path,
fchmod(2) on an fd opened read-only (reads are allowed), fchmodat(2), and
chmod through a symlink planted in the workspace.

Usage: write_chmod.py chmod|fchmod|fchmodat|symlink OUTSIDE_FILE
(cwd: the workspace; x86_64 syscall numbers)
"""

import ctypes
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
SYS_CHMOD = 90
SYS_FCHMOD = 91
SYS_FCHMODAT = 268
AT_FDCWD = -100
MODE = 0o777

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *args)
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
variant, target = sys.argv[1], sys.argv[2]
path = ctypes.c_char_p(os.fsencode(target))
mode = ctypes.c_long(MODE)
if variant == "chmod":
    report("chmod", lambda: call(SYS_CHMOD, path, mode))
elif variant == "fchmod":
    fd = os.open(target, os.O_RDONLY)
    report("chmod", lambda: call(SYS_FCHMOD, ctypes.c_long(fd), mode))
elif variant == "fchmodat":
    report("chmod", lambda: call(SYS_FCHMODAT, ctypes.c_long(AT_FDCWD), path, mode))
else:
    report("symlink", lambda: os.symlink(target, "handle"))
    report("chmod", lambda: call(SYS_CHMOD, ctypes.c_char_p(b"handle"), mode))
sys.exit(DONE)
