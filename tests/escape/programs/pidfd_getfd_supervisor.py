"""Threat: steal the supervisor's file descriptors (the seccomp listener,
the audit log) with pidfd_getfd(2).  pidfd_open itself is harmless; when it
is refused, pidfd_getfd is still tried with an invalid pidfd so the kernel
filter's answer shows.

Prints "supervisor=PID", "stolen FD: TARGET" for every fd taken,
"getfd: RESULT" (the first answer that is not EBADF) and "probe: ERRNO".
(x86_64 syscall numbers)
"""

import ctypes
import errno
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, report

DONE = 42
SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


if platform.machine() != "x86_64":
    print("skip: x86_64 syscall numbers")
    sys.exit(77)
sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
pidfd = report("pidfd_open", lambda: call(SYS_PIDFD_OPEN, sup, 0))
result = "EBADF"
for target in range(64):
    try:
        fd = call(SYS_PIDFD_GETFD, -1 if pidfd is None else pidfd, target, 0)
    except OSError as e:
        if e.errno != errno.EBADF:
            result = errno.errorcode.get(e.errno, str(e.errno))
            break
        continue
    result = "ok"
    print(f"stolen {target}: {os.readlink(f'/proc/self/fd/{fd}')}", flush=True)
    os.close(fd)
print(f"getfd: {result}", flush=True)
report("probe", probe)
sys.exit(DONE)
