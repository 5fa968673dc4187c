"""Threat: create an anonymous file with O_TMPFILE and give it a name
outside the workspace afterwards with linkat, either by fd
(AT_EMPTY_PATH) or through /proc/self/fd/N (AT_SYMLINK_FOLLOW).

Usage: write_tmpfile.py ws-empty-path|ws-proc-fd|outside-dir OUTSIDE_DIR
  ws-*         the O_TMPFILE is made in the workspace (allowed)
  outside-dir  the O_TMPFILE is made in OUTSIDE_DIR itself
(cwd: the workspace; x86_64 syscall numbers)
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
SYS_LINKAT = 265
AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000


def linkat(olddirfd, old, newpath, flags):
    return raw_syscall(
        SYS_LINKAT,
        olddirfd,
        ctypes.c_char_p(os.fsencode(old)),
        AT_FDCWD,
        ctypes.c_char_p(os.fsencode(newpath)),
        flags,
    )


def tmpfile(directory):
    fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o644)
    os.write(fd, b"planted by the sandbox\n")
    return fd


x86_64_only()
variant, outside = sys.argv[1], sys.argv[2]
target = os.path.join(outside, "from-tmpfile")
fd = report("tmpfile", lambda: tmpfile(outside if variant == "outside-dir" else "."))
if fd is not None:
    if variant == "ws-empty-path":
        report("linkat", lambda: linkat(fd, "", target, AT_EMPTY_PATH))
    else:
        report("linkat", lambda: linkat(AT_FDCWD, f"/proc/self/fd/{fd}", target, AT_SYMLINK_FOLLOW))
sys.exit(DONE)
