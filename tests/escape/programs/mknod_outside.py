"""Threat: create files with mknod, which no open or mkdir rule sees
(issue 17): a socket or a FIFO inside ~/.ssh, or a device node for
/dev/null's device in the workspace (as root: a block device node would
open the disk under every file rule).

Usage: mknod_outside.py sock|fifo|chr PATH
Prints "mknod: ok" or "mknod: ERRNO".
"""

import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
KINDS = {"sock": stat.S_IFSOCK, "fifo": stat.S_IFIFO, "chr": stat.S_IFCHR}

variant, path = sys.argv[1], sys.argv[2]
report("mknod", lambda: os.mknod(path, KINDS[variant] | 0o666, os.makedev(1, 3)))
sys.exit(DONE)
