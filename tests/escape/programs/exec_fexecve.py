"""Threat: run a program the policy denies (/usr/bin/id) through an fd of
its binary: fexecve(3) (os.execve with an fd), or execve of the fd's
/proc/self/fd/N or /dev/fd/N path.  argv[0] is a decoy.

Usage: exec_fexecve.py fexecve|proc-fd|dev-fd
The child prints "exec: ERRNO" when the exec fails; id itself prints uid=...
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import exec_in_child

DONE = 42

variant = sys.argv[1]
fd = os.open("/usr/bin/id", os.O_RDONLY)


def run():
    if variant == "fexecve":
        os.execve(fd, ["harmless"], {})
    elif variant == "proc-fd":
        os.execv(f"/proc/self/fd/{fd}", ["harmless"])
    else:
        os.execv(f"/dev/fd/{fd}", ["harmless"])


exec_in_child(run)
sys.exit(DONE)
