"""Threat: leave code behind that something outside runs later (a shell
startup file, an IPython startup script, a kernelspec, a .pth file, a git
hook, agentsh-ipy's own code, ...), by every way of writing a path.

Usage: plant.py ATTEMPTS.json SCRATCH_DIR
ATTEMPTS: [[label, how, path], ...]; SCRATCH_DIR: a writable directory on
the same file system (files renamed or linked into place start there).
Prints "label: ok" or "label: ERRNO" per attempt, and exits 42.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
PAYLOAD = "import os; os.system('echo planted')  # PLANTED-BY-SANDBOX\n"


def scratch_file(name):
    path = os.path.join(SCRATCH, name)
    with open(path, "w") as f:
        f.write(PAYLOAD)
    return path


def write(path):
    with open(path, "a") as f:  # create, or append to what is there
        f.write(PAYLOAD)


def rename_in(path):
    src = scratch_file("rename-in")
    try:
        os.rename(src, path)
    finally:
        if os.path.lexists(src):
            os.unlink(src)


def link_in(path):
    src = scratch_file("link-in")
    try:
        os.link(src, path)
    finally:
        os.unlink(src)


def rename_out(path):
    os.rename(path, os.path.join(SCRATCH, "moved-out"))


HOW = {
    "write": write,
    "truncate": lambda p: os.truncate(p, 0),
    "utime": lambda p: os.utime(p, (0, 0)),
    "chmod": lambda p: os.chmod(p, 0o777),
    "chown": lambda p: os.chown(p, os.getuid(), os.getgid()),
    "delete": os.unlink,
    "rmdir": os.rmdir,
    "mkdir": os.mkdir,
    "symlink": lambda p: os.symlink(SCRATCH, p),
    "link": link_in,
    "rename-in": rename_in,
    "rename-out": rename_out,
    # a directory above an entry, renamed away and back: in between, its
    # contents lie outside every protected path
    "rename-dir": lambda p: (os.rename(p, p + ".away"), os.rename(p + ".away", p)),
}

with open(sys.argv[1]) as f:
    ATTEMPTS = json.load(f)
SCRATCH = sys.argv[2]
for label, how, path in ATTEMPTS:
    report(label, lambda how=how, path=path: HOW[how](path))
sys.exit(DONE)
