"""Metadata changes inside the workspace (issue 17): what the sandbox must
keep working, and the one namespace it must refuse there too.

control: a user xattr set, read back and removed, by path and by fd (an fd
opened read-only, as `setfattr` and `cp` do); a POSIX ACL set (setfacl when
installed, else its setxattr); FS_NOATIME_FL set and cleared by the owner
(`chattr +A`, by ioctl and with chattr when installed); fchmod, fchown and
futimens on an fd; `cp -a` keeping a user xattr. Prints "LABEL: ok ..." each.

at-forms: the same through setxattrat, removexattrat (Linux 6.13) and
file_setattr (6.17), by path and by fd (AT_EMPTY_PATH); x86_64 numbers.

capability: a file capability (security.capability, cap_setuid) on a file
in the workspace: privileges any later exec of it would gain, outside the
sandbox too. Prints "capability: ok" or "capability: ERRNO".

Usage: metadata_workspace.py control|at-forms|capability   (cwd: the workspace)
"""

import ctypes
import fcntl
import os
import shutil
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import raw_syscall, report, x86_64_only

DONE = 42
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_NOATIME_FL = 0x00000080
ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_OTHER = 0x01, 0x04, 0x20
UNDEFINED_ID = 0xFFFFFFFF
VFS_CAP_REVISION_2 = 0x02000000
CAP_SETUID = 7


def acl(user, group, other):
    entries = [(ACL_USER_OBJ, user), (ACL_GROUP_OBJ, group), (ACL_OTHER, other)]
    return struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", t, p, UNDEFINED_ID) for t, p in entries
    )


def fresh(name):
    with open(name, "w") as f:
        f.write("workspace file\n")
    return name


def user_xattr_by_path():
    path = fresh("xattr-path.txt")
    os.setxattr(path, "user.note", b"by path")
    value = os.getxattr(path, "user.note")
    os.removexattr(path, "user.note")
    assert value == b"by path", value
    return value


def user_xattr_by_fd():
    path = fresh("xattr-fd.txt")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.setxattr(fd, "user.note", b"by fd")
        value = os.getxattr(path, "user.note")
        os.removexattr(fd, "user.note")
    finally:
        os.close(fd)
    assert value == b"by fd", value
    return value


def set_acl():
    path = fresh("acl.txt")
    if shutil.which("setfacl"):
        subprocess.run(["setfacl", "-m", "u::rw,g::r,o::-", path], check=True)
    else:
        os.setxattr(path, "system.posix_acl_access", acl(6, 4, 0))
    mode = os.stat(path).st_mode & 0o777
    assert mode == 0o640, oct(mode)
    return oct(mode)


def flags(fd):
    return struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, bytes(4)))[0]


def noatime_by_ioctl():
    path = fresh("flags.txt")
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags(fd) | FS_NOATIME_FL))
        got = flags(fd)
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", got & ~FS_NOATIME_FL))
    finally:
        os.close(fd)
    assert got & FS_NOATIME_FL, hex(got)
    return hex(got)


def noatime_by_chattr():
    path = fresh("chattr.txt")
    if not shutil.which("chattr"):
        return "no chattr here"
    subprocess.run(["chattr", "+A", path], check=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        got = flags(fd)
    finally:
        os.close(fd)
    subprocess.run(["chattr", "-A", path], check=True)
    assert got & FS_NOATIME_FL, hex(got)
    return hex(got)


def by_fd():
    path = fresh("by-fd.txt")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.chmod(fd, 0o600)
        os.chown(fd, os.getuid(), os.getgid())
        os.utime(fd, ns=(86400 * 10**9, 86400 * 10**9))
    finally:
        os.close(fd)
    st = os.stat(path)
    assert st.st_mode & 0o777 == 0o600 and st.st_mtime == 86400, (oct(st.st_mode), st.st_mtime)
    return oct(st.st_mode & 0o777)


def copy_keeps_xattr():
    path = fresh("copy-src.txt")
    os.setxattr(path, "user.origin", b"kept")
    subprocess.run(["cp", "-a", path, "copy-dst.txt"], check=True)
    value = os.getxattr("copy-dst.txt", "user.origin")
    assert value == b"kept", value
    return value


SYS_SETXATTRAT, SYS_REMOVEXATTRAT, SYS_FILE_GETATTR, SYS_FILE_SETATTR = 463, 466, 468, 469
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
FS_XFLAG_NOATIME = 0x40


def xattr_args(value):
    """struct xattr_args: the value's address, its size, flags; and the buffer."""
    buf = ctypes.create_string_buffer(value, len(value))
    return ctypes.create_string_buffer(
        struct.pack("<QII", ctypes.addressof(buf), len(value), 0)
    ), buf


def setxattrat(dirfd, path, flags, name, value):
    args, _keep = xattr_args(value)
    raw_syscall(
        SYS_SETXATTRAT, dirfd, ctypes.c_char_p(path), flags, ctypes.c_char_p(name), args, 16
    )


def xattrat_by_path():
    path = fresh("at-path.txt")
    setxattrat(AT_FDCWD, path.encode(), 0, b"user.at", b"by setxattrat")
    value = os.getxattr(path, "user.at")
    raw_syscall(SYS_REMOVEXATTRAT, AT_FDCWD, ctypes.c_char_p(path.encode()), 0,
                ctypes.c_char_p(b"user.at"))  # fmt: skip
    assert value == b"by setxattrat" and "user.at" not in os.listxattr(path), value
    return value


def xattrat_by_fd():
    path = fresh("at-fd.txt")
    fd = os.open(path, os.O_RDONLY)
    try:
        setxattrat(fd, b"", AT_EMPTY_PATH, b"user.at", b"by fd")
        value = os.getxattr(path, "user.at")
        raw_syscall(SYS_REMOVEXATTRAT, fd, ctypes.c_char_p(b""), AT_EMPTY_PATH,
                    ctypes.c_char_p(b"user.at"))  # fmt: skip
    finally:
        os.close(fd)
    assert value == b"by fd" and "user.at" not in os.listxattr(path), value
    return value


def xflags(dirfd, path, flags):
    attr = ctypes.create_string_buffer(24)
    raw_syscall(SYS_FILE_GETATTR, dirfd, ctypes.c_char_p(path), attr, 24, flags)
    return struct.unpack_from("<Q", attr.raw)[0]


def set_xflags(dirfd, path, flags, value):
    attr = ctypes.create_string_buffer(struct.pack("<QIIII", value, 0, 0, 0, 0), 24)
    raw_syscall(SYS_FILE_SETATTR, dirfd, ctypes.c_char_p(path), attr, 24, flags)


def noatime_by_file_setattr():
    path = fresh("setattr.txt").encode()
    before = xflags(AT_FDCWD, path, 0)
    set_xflags(AT_FDCWD, path, 0, before | FS_XFLAG_NOATIME)
    got = xflags(AT_FDCWD, path, 0)
    fd = os.open(path, os.O_RDONLY)
    try:
        set_xflags(fd, b"", AT_EMPTY_PATH, got & ~FS_XFLAG_NOATIME)  # by fd
    finally:
        os.close(fd)
    after = xflags(AT_FDCWD, path, 0)
    assert got & FS_XFLAG_NOATIME and not after & FS_XFLAG_NOATIME, (hex(got), hex(after))
    return hex(got)


def capability():
    path = fresh("capable")
    # struct vfs_cap_data, revision 2: magic_etc, then permitted/inheritable
    # for capabilities 0-31 and 32-63
    data = struct.pack("<IIIII", VFS_CAP_REVISION_2, 1 << CAP_SETUID, 0, 0, 0)
    os.setxattr(path, "security.capability", data)
    return os.getxattr(path, "security.capability")


def step(label, fn):
    """report(), with a failed assertion reported as such."""
    try:
        report(label, fn)
    except (AssertionError, subprocess.CalledProcessError) as e:
        print(f"{label}: wrong {e}", flush=True)


if sys.argv[1] == "control":
    step("user-xattr", user_xattr_by_path)
    step("user-xattr-fd", user_xattr_by_fd)
    step("acl", set_acl)
    step("noatime", noatime_by_ioctl)
    step("chattr", noatime_by_chattr)
    step("by-fd", by_fd)
    step("cp-a", copy_keeps_xattr)
elif sys.argv[1] == "at-forms":
    x86_64_only()
    step("xattrat", xattrat_by_path)
    step("xattrat-fd", xattrat_by_fd)
    step("file-setattr", noatime_by_file_setattr)
else:
    report("capability", capability)
sys.exit(DONE)
