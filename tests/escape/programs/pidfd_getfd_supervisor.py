"""Threat: steal the supervisor's file descriptors (the seccomp listener,
the audit log) with pidfd_getfd(2).  pidfd_open itself is harmless; when it
is refused, pidfd_getfd is still tried with an invalid pidfd so the kernel
filter's answer shows.

Prints "supervisor=PID", "stolen FD: TARGET" for every fd taken,
"getfd: RESULT" (the first answer that is not EBADF) and "probe: ERRNO".
(x86_64 syscall numbers)
"""

import errno
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import find_supervisor, probe, raw_syscall, report, x86_64_only

DONE = 42
SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438

x86_64_only()
sup = find_supervisor()
print(f"supervisor={sup}", flush=True)
pidfd = report("pidfd_open", lambda: raw_syscall(SYS_PIDFD_OPEN, sup, 0))
result = "EBADF"
for target in range(64):
    try:
        fd = raw_syscall(SYS_PIDFD_GETFD, -1 if pidfd is None else pidfd, target, 0)
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
