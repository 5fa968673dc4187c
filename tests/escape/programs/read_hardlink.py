"""Threat: hard-link ~/.ssh/id_rsa into the workspace (same file system) and
read the key under its new, allowed name.

Run with the workspace as the current directory.
"""

import errno
import os
import sys

DONE = 42


def report(label, fn):
    try:
        value = fn()
    except OSError as e:
        print(f"{label}: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
        return None
    print(f"{label}: ok {value!r}", flush=True)
    return value


def read(path):
    with open(path) as f:
        return f.read()


key = os.path.expanduser("~/.ssh/id_rsa")
report("link", lambda: os.link(key, "notes.txt"))
report("open", lambda: read("notes.txt"))
sys.exit(DONE)
