"""Threat: open the outside directory read-only (reads are allowed), then
create a file in it through the fd's /proc/self/fd/N or /dev/fd/N path,
which the default policy's "devices" rule allows by name.

Usage: write_proc_fd_dir.py proc|dev OUTSIDE_DIR
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


def create(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        return os.write(fd, b"planted by the sandbox\n")
    finally:
        os.close(fd)


variant, outside = sys.argv[1], sys.argv[2]
dirfd = os.open(outside, os.O_RDONLY | os.O_DIRECTORY)
base = "/proc/self/fd" if variant == "proc" else "/dev/fd"
report("create", lambda: create(f"{base}/{dirfd}/planted"))
sys.exit(DONE)
