"""Threat: make a file appear outside the workspace by hard-linking a
workspace file there (no open or create outside).

Usage: write_link.py OUTSIDE_DIR   (cwd: the workspace)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


with open("payload", "w") as f:
    f.write("planted by the sandbox\n")
report("link", lambda: os.link("payload", os.path.join(sys.argv[1], "linked")))
sys.exit(DONE)
