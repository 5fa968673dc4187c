"""Threat: change a file's metadata outside the workspace without any of the
calls the file rules decide (issue 17): an ACL through setxattr turns
~/.ssh/id_rsa from 0600 into world-readable (chmod is never called); a
user xattr is set through an fd opened read-only.

Usage: metadata_outside.py acl|fd-user|at-user|setattr PATH
Prints "setxattr: ok" or "setxattr: ERRNO". at-user: a user xattr through
setxattrat (Linux 6.13); setattr: FS_XFLAG_NODUMP through file_setattr
(6.17), which needs only ownership (x86_64 numbers for both).
"""

import ctypes
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

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


SYS_SETXATTRAT, SYS_FILE_SETATTR = 463, 469
AT_FDCWD = -100
FS_XFLAG_NODUMP = 0x80


def set_user_xattr_at(path):
    value = ctypes.create_string_buffer(b"planted", 7)
    args = ctypes.create_string_buffer(struct.pack("<QII", ctypes.addressof(value), 7, 0))
    name = ctypes.c_char_p(b"user.agentsh-escape")
    raw_syscall(SYS_SETXATTRAT, AT_FDCWD, ctypes.c_char_p(os.fsencode(path)), 0, name, args, 16)
    return os.getxattr(path, "user.agentsh-escape")


def set_nodump_by_path(path):
    attr = ctypes.create_string_buffer(struct.pack("<QIIII", FS_XFLAG_NODUMP, 0, 0, 0, 0), 24)
    raw_syscall(SYS_FILE_SETATTR, AT_FDCWD, ctypes.c_char_p(os.fsencode(path)), attr, 24, 0)


variant, path = sys.argv[1], sys.argv[2]
if variant == "acl":
    report("setxattr", lambda: set_acl(path))
elif variant == "fd-user":
    report("setxattr", lambda: set_user_xattr_by_fd(path))
elif variant == "at-user":
    x86_64_only()
    report("setxattrat", lambda: set_user_xattr_at(path))
else:
    x86_64_only()
    report("setattr", lambda: set_nodump_by_path(path))
sys.exit(DONE)
