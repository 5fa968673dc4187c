"""Threat: change what an exec runs after the sandbox has looked at it. A
thread keeps replacing the workspace file "innocent" (atomically, by
rename) with a copy of /usr/bin/true or one of /usr/bin/id, while children
exec it: a check that reads the file before the kernel does sees one, the
kernel may run the other.

Usage: exec_race.py [SECONDS]   (cwd: the workspace)
Each child that ran id prints uid=...; at the end, how many execs were
tried, ran (the benign copy) and were killed.
"""

import contextlib
import os
import shutil
import sys
import threading
import time

DONE = 42
MAX_EXECS = 2000

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
for name, source in (("benign", "/usr/bin/true"), ("denied", "/usr/bin/id")):
    shutil.copyfile(source, name)
    os.chmod(name, 0o755)
with contextlib.suppress(FileNotFoundError):
    os.unlink("innocent")
os.link("benign", "innocent")
stop = threading.Event()


def flip():
    i = 0
    while not stop.is_set():
        with contextlib.suppress(OSError):
            os.link(("benign", "denied")[i % 2], "innocent.new")
            os.replace("innocent.new", "innocent")
        with contextlib.suppress(OSError):
            os.unlink("innocent.new")
        i += 1


flipper = threading.Thread(target=flip, daemon=True)
flipper.start()
execs = ran = killed = 0
deadline = time.monotonic() + seconds
sys.stdout.flush()
while time.monotonic() < deadline and execs < MAX_EXECS:
    execs += 1
    pid = os.fork()
    if pid == 0:
        with contextlib.suppress(OSError):
            os.execv(os.path.abspath("innocent"), ["harmless"])
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        ran += 1
    elif os.WIFSIGNALED(status):
        killed += 1  # a sandbox that checks the image it mapped kills it
stop.set()
flipper.join()
print(f"execs: {execs}")
print(f"ran: {ran}")
print(f"killed: {killed}")
sys.exit(DONE)
