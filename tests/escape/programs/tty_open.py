"""Not a threat: a program that opens /dev/tty, its controlling terminal,
as ssh or git do to ask for a password. Prints "tty: ok" and whether the
fd is that terminal (the one on stdin), or the errno.

Usage: tty_open.py
"""

import errno
import os
import sys

DONE = 42

try:
    fd = os.open("/dev/tty", os.O_RDWR | os.O_CLOEXEC)
except OSError as e:
    print(f"tty: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
    sys.exit(DONE)
os.write(fd, b"written to the terminal\n")
rdev = os.fstat(fd).st_rdev
# The kernel's own open keeps /dev/tty's node (5:0); the supervisor's is the
# terminal's own node. Either way it is a terminal in this session.
own = os.isatty(0) and rdev in (os.fstat(0).st_rdev, os.makedev(5, 0))
print(f"tty: ok {os.isatty(fd)} same={own} pgrp={os.tcgetpgrp(fd) == os.getpgrp()}", flush=True)
sys.exit(DONE)
