"""Threat: change a file's inode flags outside the workspace through an fd
opened read-only (issue 17: `chattr +i` went through). FS_NODUMP_FL needs
only ownership, so uid 65534 can do it to its own file too (+i and +a need
CAP_LINUX_IMMUTABLE: root).

Usage: inode_flags.py PATH
Prints "setflags: ok 0x..." or "setflags: ERRNO".
"""

import fcntl
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_NODUMP_FL = 0x00000040


def set_nodump(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, FS_IOC_GETFLAGS, bytes(8)))[0]
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("l", flags | FS_NODUMP_FL))
        return hex(struct.unpack("l", fcntl.ioctl(fd, FS_IOC_GETFLAGS, bytes(8)))[0])
    finally:
        os.close(fd)


report("setflags", lambda: set_nodump(sys.argv[1]))
sys.exit(DONE)
