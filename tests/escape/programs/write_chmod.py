"""Threat: change the mode of a file outside the workspace (make it world
writable, or executable) by every chmod entry point: chmod(2) by path,
fchmod(2) on an fd opened read-only (reads are allowed), fchmodat(2), and
chmod through a symlink planted in the workspace.

Usage: write_chmod.py chmod|fchmod|fchmodat|symlink OUTSIDE_FILE
(cwd: the workspace; x86_64 syscall numbers)
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_CHMOD = 90
SYS_FCHMOD = 91
SYS_FCHMODAT = 268
AT_FDCWD = -100
MODE = 0o777

x86_64_only()
variant, target = sys.argv[1], sys.argv[2]
path = ctypes.c_char_p(os.fsencode(target))
if variant == "chmod":
    report("chmod", lambda: raw_syscall(SYS_CHMOD, path, MODE))
elif variant == "fchmod":
    fd = os.open(target, os.O_RDONLY)
    report("chmod", lambda: raw_syscall(SYS_FCHMOD, fd, MODE))
elif variant == "fchmodat":
    report("chmod", lambda: raw_syscall(SYS_FCHMODAT, AT_FDCWD, path, MODE))
else:
    report("symlink", lambda: os.symlink(target, "handle"))
    report("chmod", lambda: raw_syscall(SYS_CHMOD, ctypes.c_char_p(b"handle"), MODE))
sys.exit(DONE)
