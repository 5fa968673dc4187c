"""Threat: read the user's SSH private key by its plain path.

Prints ``open: ok '<content>'`` or ``open: ERRNO``; exits 42 at its end.
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
report("open", lambda: read(key))
sys.exit(DONE)
