"""Threat: hard-link ~/.ssh/id_rsa into the workspace (same file system) and
read the key under its new, allowed name.

Run with the workspace as the current directory.
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
report("link", lambda: os.link(key, "notes.txt"))
report("open", lambda: read("notes.txt"))
sys.exit(DONE)
