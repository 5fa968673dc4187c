"""Threat: read ~/.ssh/id_rsa with openat2(2) and its RESOLVE_* flags, which
change how the kernel walks the path (RESOLVE_IN_ROOT makes "/" mean the
dirfd, so "/.ssh/id_rsa" relative to $HOME is the key).

Usage: read_openat2.py no-symlinks|beneath|in-root   (x86_64 numbers)
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import path_fd, raw_syscall, report, x86_64_only

DONE = 42
SYS_OPENAT2 = 437
AT_FDCWD = -100
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


def openat2(dirfd, path, resolve):
    how = OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, resolve)
    fd = raw_syscall(
        SYS_OPENAT2,
        dirfd,
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


x86_64_only()
home = os.path.expanduser("~")
key = os.path.join(home, ".ssh", "id_rsa")
variant = sys.argv[1]
if variant == "no-symlinks":
    report("openat2", lambda: openat2(AT_FDCWD, key, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS))
else:
    homefd = path_fd(home)
    if variant == "beneath":
        report("openat2", lambda: openat2(homefd, ".ssh/id_rsa", RESOLVE_BENEATH))
    else:
        report("openat2", lambda: openat2(homefd, "/.ssh/id_rsa", RESOLVE_IN_ROOT))
sys.exit(DONE)
