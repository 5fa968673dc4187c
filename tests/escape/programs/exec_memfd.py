"""Threat: run a program with no file on disk: memfd_create, write the
bytes of a program, then exec the memfd (fexecve, or execve of its
/proc/self/fd/N path). With /usr/bin/id's bytes it is a denied program;
with /usr/bin/echo's it is any program at all that no name rule can see.

Usage: exec_memfd.py id|id-proc-fd|id-link|echo   (cwd: the workspace)
id-link: execve of a workspace symlink to /proc/self/fd/N.
The child prints "exec: ERRNO" when the exec fails; id prints uid=..., echo
prints "ran-from-memfd".
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import exec_in_child

DONE = 42

variant = sys.argv[1]
source = "/usr/bin/echo" if variant == "echo" else "/usr/bin/id"
fd = os.memfd_create("innocent", 0)
with open(source, "rb") as f:
    os.write(fd, f.read())


def run():
    if variant == "id-proc-fd":
        os.execv(f"/proc/self/fd/{fd}", ["harmless"])
    elif variant == "id-link":
        os.symlink(f"/proc/self/fd/{fd}", "harmless")
        os.execv(os.path.abspath("harmless"), ["harmless"])
    else:
        os.execve(fd, ["harmless", "ran-from-memfd"], {})


exec_in_child(run)
sys.exit(DONE)
