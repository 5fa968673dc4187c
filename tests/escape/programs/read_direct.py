"""Threat: read the user's SSH private key by its plain path.

Prints ``open: ok '<content>'`` or ``open: ERRNO``; exits 42 at its end.
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
report("open", lambda: read(key))
sys.exit(DONE)
