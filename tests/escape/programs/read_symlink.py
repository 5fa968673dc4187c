"""Threat: plant a symlink to ~/.ssh/id_rsa in the workspace (where
everything is allowed) and read the key through it.

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
report("symlink", lambda: os.symlink(key, "innocent.txt"))
report("open", lambda: read("innocent.txt"))
sys.exit(DONE)
