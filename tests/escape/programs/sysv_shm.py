"""Threat: read a host process's System V shared memory (issue 17): the
segment is named by a key in the host's IPC namespace, not by any path a
file rule sees.

Usage: sysv_shm.py KEY   (the key of a segment made outside, 4096 bytes)
Prints "shmget: ok ..." / "shmat: ok ..." or "...: ERRNO", then the bytes
read ("content: ...").
"""

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]


def check(r):
    if r in (-1, None, ctypes.c_void_p(-1).value):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


key = int(sys.argv[1], 0)
shmid = report("shmget", lambda: check(libc.shmget(key, 0, 0)))
if shmid is not None:
    addr = report("shmat", lambda: check(libc.shmat(shmid, None, 0o10000)))  # SHM_RDONLY
    if addr is not None:
        print("content:", ctypes.string_at(addr, 64).split(b"\0")[0].decode(), flush=True)
sys.exit(DONE)
