"""Threat: read ~/.ssh/id_rsa through a /proc magic link to the root
directory, hoping the policy only sees a harmless /proc path.

Usage: read_proc_root.py self|thread-self|pid
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


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
