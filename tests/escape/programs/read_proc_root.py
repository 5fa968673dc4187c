"""Threat: read ~/.ssh/id_rsa through a /proc magic link to the root
directory, hoping the policy only sees a harmless /proc path.

Usage: read_proc_root.py self|thread-self|pid
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
prefix = {
    "self": "/proc/self/root",
    "thread-self": "/proc/thread-self/root",
    "pid": f"/proc/{os.getpid()}/root",
}[sys.argv[1]]
report("open", lambda: read(prefix + key))
sys.exit(DONE)
