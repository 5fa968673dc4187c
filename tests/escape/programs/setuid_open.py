"""Threat: get the supervisor's rights for an open. A root sandbox's
process changes the user its file accesses are checked as (setfsuid and
setfsgid 65534, as a file server does per client) and opens a root-only
file: the supervisor, still root, opening it on the process's behalf would
read what the process itself may not.

(A full setuid makes the supervisor unable to read the process's memory,
so every call it makes is refused anyway; changing the fs ids, then
PR_SET_DUMPABLE, keeps it readable.)

Usage: setuid_open.py FILE   (as root)
"""

import ctypes
import errno
import os
import sys

DONE = 42
PR_SET_DUMPABLE = 4
libc = ctypes.CDLL(None, use_errno=True)
path = sys.argv[1]
libc.setfsgid(65534)
libc.setfsuid(65534)
if libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0:
    print(f"dumpable: {errno.errorcode.get(ctypes.get_errno())}", flush=True)
try:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    data = os.read(fd, 4096)
    print(f"open: ok {data.decode(errors='replace')}", flush=True)
except OSError as e:
    print(f"open: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
sys.exit(DONE)
