"""Threat: run a program the policy denies (/usr/bin/id) without naming it
in an execve path: execveat(2) on an O_PATH fd of the binary with
AT_EMPTY_PATH, or relative to a dirfd of /usr/bin.  argv[0] is a decoy.

Usage: exec_execveat.py empty-path|dirfd   (x86_64 syscall numbers)
The child prints "exec: ERRNO" when the exec fails; id itself prints uid=...
"""

import ctypes
import errno
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import path_fd, raw_syscall, x86_64_only

DONE = 42
SYS_EXECVEAT = 322
AT_EMPTY_PATH = 0x1000


def execveat(dirfd, path, flags):
    argv = (ctypes.c_char_p * 2)(b"harmless", None)
    envp = (ctypes.c_char_p * 1)(None)
    try:
        raw_syscall(SYS_EXECVEAT, dirfd, ctypes.c_char_p(path), argv, envp, flags)
    except OSError as e:  # only reached when the exec failed
        return e.errno


x86_64_only()
variant = sys.argv[1]
if variant == "empty-path":
    fd, name, flags = path_fd("/usr/bin/id", directory=False), b"", AT_EMPTY_PATH
else:
    fd, name, flags = path_fd("/usr/bin"), b"id", 0
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    err = execveat(fd, name, flags)
    os.write(1, f"exec: {errno.errorcode.get(err, err)}\n".encode())
    os._exit(1)
_, status = os.waitpid(pid, 0)
print(f"child: {os.waitstatus_to_exitcode(status)}")
sys.exit(DONE)
