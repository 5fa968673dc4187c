"""Threat: write outside the workspace through a symlink planted in it: the
path the program opens is in the workspace, the file written is not.

Usage: write_symlink_out.py create|existing OUTSIDE_DIR   (cwd: the workspace)
  create    the link points at a new file outside (O_CREAT)
  existing  the link points at OUTSIDE_DIR/existing.txt (O_TRUNC)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


def write(path, flags):
    fd = os.open(path, os.O_WRONLY | flags, 0o644)
    try:
        return os.write(fd, b"planted by the sandbox\n")
    finally:
        os.close(fd)


variant, outside = sys.argv[1], sys.argv[2]
if variant == "create":
    target, flags = os.path.join(outside, "via-symlink"), os.O_CREAT
else:
    target, flags = os.path.join(outside, "existing.txt"), os.O_TRUNC
report("symlink", lambda: os.symlink(target, "out"))
report("write", lambda: write("out", flags))
sys.exit(DONE)
