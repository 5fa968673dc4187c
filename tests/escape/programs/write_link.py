"""Threat: make a file appear outside the workspace by hard-linking a
workspace file there (no open or create outside).

Usage: write_link.py OUTSIDE_DIR   (cwd: the workspace)
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


with open("payload", "w") as f:
    f.write("planted by the sandbox\n")
report("link", lambda: os.link("payload", os.path.join(sys.argv[1], "linked")))
sys.exit(DONE)
