"""Threat: write outside the workspace without opening anything there:
create the file inside the workspace, then rename it out.

Usage: write_rename.py OUTSIDE_DIR   (cwd: the workspace)
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
report("rename", lambda: os.rename("payload", os.path.join(sys.argv[1], "moved")))
sys.exit(DONE)
