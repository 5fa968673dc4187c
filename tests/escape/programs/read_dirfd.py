"""Threat: get a directory fd for ~/.ssh (O_PATH reads no data, so a sandbox
may let it pass) and then open the key relative to it: with openat, through
/proc/self/fd/N/id_rsa, or after fchdir.  If ~/.ssh itself cannot be opened,
fall back to an fd of $HOME and ".ssh/id_rsa", so the second step is always
tried.

Usage: read_dirfd.py openat|proc-fd|fchdir
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import path_fd, report

DONE = 42


def read_fd(fd):
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


home = os.path.expanduser("~")
dirfd = report("dirfd", lambda: os.open(os.path.join(home, ".ssh"), os.O_PATH | os.O_DIRECTORY))
name = "id_rsa"
if dirfd is None:
    dirfd = path_fd(home)
    name = ".ssh/id_rsa"
variant = sys.argv[1]
if variant == "openat":
    report("open", lambda: read_fd(os.open(name, os.O_RDONLY, dir_fd=dirfd)))
elif variant == "proc-fd":
    report("open", lambda: read_fd(os.open(f"/proc/self/fd/{dirfd}/{name}", os.O_RDONLY)))
else:
    os.fchdir(dirfd)
    report("open", lambda: read_fd(os.open(name, os.O_RDONLY)))
sys.exit(DONE)
