"""Threat: write outside the workspace without opening anything there:
create the file inside the workspace, then rename it out.

Usage: write_rename.py OUTSIDE_DIR   (cwd: the workspace)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


with open("payload", "w") as f:
    f.write("planted by the sandbox\n")
report("rename", lambda: os.rename("payload", os.path.join(sys.argv[1], "moved")))
sys.exit(DONE)
