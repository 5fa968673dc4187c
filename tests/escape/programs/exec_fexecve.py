"""Threat: run a program the policy denies (/usr/bin/id) through an fd of
its binary: fexecve(3) (os.execve with an fd), or execve of the fd's
/proc/self/fd/N or /dev/fd/N path.  argv[0] is a decoy.

Usage: exec_fexecve.py fexecve|proc-fd|dev-fd
The child prints "exec: ERRNO" when the exec fails; id itself prints uid=...
"""

import errno
import os
import sys

DONE = 42

variant = sys.argv[1]
fd = os.open("/usr/bin/id", os.O_RDONLY)
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    try:
        if variant == "fexecve":
            os.execve(fd, ["harmless"], {})
        elif variant == "proc-fd":
            os.execv(f"/proc/self/fd/{fd}", ["harmless"])
        else:
            os.execv(f"/dev/fd/{fd}", ["harmless"])
    except OSError as e:
        os.write(1, f"exec: {errno.errorcode.get(e.errno, e.errno)}\n".encode())
    os._exit(1)
_, status = os.waitpid(pid, 0)
print(f"child: {os.waitstatus_to_exitcode(status)}")
sys.exit(DONE)
