"""Threat: change a file's metadata outside the workspace without any of the
calls the file rules decide (issue 17): an ACL through setxattr turns
~/.ssh/id_rsa from 0600 into world-readable (chmod is never called); a
user xattr is set through an fd opened read-only.

Usage: metadata_outside.py acl|fd-user PATH
Prints "setxattr: ok" or "setxattr: ERRNO".
"""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_OTHER = 0x01, 0x04, 0x20
UNDEFINED_ID = 0xFFFFFFFF


def acl(user, group, other):
    """system.posix_acl_access: version 2, then (tag, perm, id) entries."""
    entries = [(ACL_USER_OBJ, user), (ACL_GROUP_OBJ, group), (ACL_OTHER, other)]
    return struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", t, p, UNDEFINED_ID) for t, p in entries
    )


def set_acl(path):
    os.setxattr(path, "system.posix_acl_access", acl(6, 4, 4))
    return oct(os.stat(path).st_mode & 0o777)


def set_user_xattr_by_fd(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.setxattr(fd, "user.agentsh-escape", b"planted")
    finally:
        os.close(fd)
    return os.getxattr(path, "user.agentsh-escape")


variant, path = sys.argv[1], sys.argv[2]
report("setxattr", lambda: set_acl(path) if variant == "acl" else set_user_xattr_by_fd(path))
sys.exit(DONE)
