"""Threat: read another terminal's input (the user's shell, another
notebook's terminal) by opening its /dev/pts/N by name.

argv: ``read PATH``: open PATH and read what waits in its input; prints
``open: ok '<text>'`` or ``open: ERRNO``. ``own``: a control: a pty made
here (os.openpty), its slave opened again by name, here and in a child,
and ``script`` (when installed) running a command in a pty of its own;
prints "openpty", "reopen", "child" and "script" (``script: absent`` when
it is not installed). Exits 42 at its end.
"""

import os
import select
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


def read_waiting(path):
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        # the terminal's line discipline hands input over asynchronously
        select.select([fd], [], [], 5)
        return os.read(fd, 4096).decode(errors="replace")
    finally:
        os.close(fd)


def reopen(name, text):
    """Open the slave ``name`` by name, write ``text`` through it."""
    fd = os.open(name, os.O_RDWR | os.O_NOCTTY)
    try:
        return os.write(fd, text)
    finally:
        os.close(fd)


def from_master(master):
    select.select([master], [], [], 5)
    return os.read(master, 4096).decode(errors="replace").strip()


def own():
    master, slave = report("openpty", os.openpty)
    name = os.ttyname(slave)
    report("reopen", lambda: (reopen(name, b"parent\n"), from_master(master)))
    pid = os.fork()
    if pid == 0:
        try:
            reopen(name, b"child\n")
        except OSError:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        report("child", lambda: from_master(master))
    else:
        print("child: EACCES", flush=True)
    if shutil.which("script") is None:
        print("script: absent", flush=True)
    else:
        out = subprocess.run(
            ["script", "-qc", "echo hi", "/dev/null"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if out.returncode == 0 and "hi" in out.stdout:
            print("script: ok", flush=True)
        else:
            print(f"script: failed {out.returncode} {out.stdout!r} {out.stderr!r}", flush=True)


if sys.argv[1] == "read":
    report("open", lambda: read_waiting(sys.argv[2]))
else:
    own()
sys.exit(DONE)
