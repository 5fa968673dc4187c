"""Threat: plant a symlink to ~/.ssh/id_rsa in the workspace (where
everything is allowed) and read the key through it.

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
report("symlink", lambda: os.symlink(key, "innocent.txt"))
report("open", lambda: read("innocent.txt"))
sys.exit(DONE)
