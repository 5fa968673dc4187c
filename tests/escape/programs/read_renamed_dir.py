"""Threat: move the protected ~/.ssh directory (or the key itself) to a name
no rule mentions, then read the key there.

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


home = os.path.expanduser("~")
ssh = os.path.join(home, ".ssh")
moved = os.path.join(home, "ssh-moved")
report("rename-dir", lambda: os.rename(ssh, moved))
report("open-moved", lambda: read(os.path.join(moved, "id_rsa")))
report("rename-key", lambda: os.rename(os.path.join(ssh, "id_rsa"), "stolen"))
report("open-stolen", lambda: read("stolen"))
sys.exit(DONE)
