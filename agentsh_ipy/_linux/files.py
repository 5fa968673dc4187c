"""Opening files on a tracee's behalf: openat2 with RESOLVE flags, umask."""

from __future__ import annotations

import ctypes
import os

from . import _syscall, arch

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
CLONE_FS = 0x00000200
AT_FDCWD = -100


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


# syscall(2) is variadic: its arguments go as C longs, made once.
_NR_OPENAT2 = ctypes.c_long(437)  # the same on every architecture
_HOW_SIZE = ctypes.c_long(ctypes.sizeof(_OpenHow))


def openat2(path: str, flags: int, mode: int, resolve: int, dirfd: int = AT_FDCWD) -> int:
    # Called for every emulated open: the bytes go as char* directly, and the
    # error message is built only on failure.
    how = _OpenHow(flags, mode if flags & (os.O_CREAT | 0o20000000) else 0, resolve)
    fd = _syscall.raw(
        _NR_OPENAT2, ctypes.c_long(dirfd), os.fsencode(path), ctypes.byref(how), _HOW_SIZE
    )
    return int(fd) if fd != -1 else _syscall.check(fd, f"openat2({path!r})")


_utimensat = _syscall.libc.utimensat
_utimensat.restype = ctypes.c_int
_utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]


def utimensat(path: str, times: bytes | None) -> None:
    """Set a file's times from two struct timespec exactly as a tracee gave
    them (UTIME_NOW, UTIME_OMIT included); None: both now."""
    buf = None if times is None else ctypes.create_string_buffer(times, 32)
    _syscall.check(_utimensat(AT_FDCWD, os.fsencode(path), buf, 0), f"utimensat({path!r})")


def umask_of(pid: int | str) -> int:
    """A task's umask, from /proc/PID/status (Linux 4.7+; ``pid`` may be
    "thread-self")."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    raise OSError(f"no Umask in /proc/{pid}/status")


def unshare_fs() -> None:
    """Give the calling thread its own cwd/root/umask (fs_struct), so a umask
    set here does not touch the rest of the process."""
    nr = arch.current().nr("unshare")
    assert nr is not None
    _syscall.syscall(nr, CLONE_FS, what="unshare(CLONE_FS)")


_NR_PIDFD_GETFD = 438  # the same on every architecture
_NR_FILE_SETATTR = 469  # the same on every architecture (Linux 6.17+)
PIDFD_THREAD = os.O_EXCL  # pidfd_open: this thread, not its thread group (Linux 6.9+)


def fd_copy(pid: int, tid: int, fd: int) -> int:
    """A copy of thread ``tid``'s fd ``fd`` in this process (pidfd_getfd,
    CLOEXEC): the same open file description. By the thread's own pidfd
    where the kernel has them, since a thread may have unshared its fd table;
    before Linux 6.9, by its process's."""
    try:
        pidfd = os.pidfd_open(tid, PIDFD_THREAD)
    except OSError:
        pidfd = os.pidfd_open(pid)
    try:
        return _syscall.syscall(_NR_PIDFD_GETFD, pidfd, fd, 0, what=f"pidfd_getfd({tid}, {fd})")
    finally:
        os.close(pidfd)


_futimens = _syscall.libc.futimens  # glibc's utimensat refuses a NULL path
_futimens.restype = ctypes.c_int
_futimens.argtypes = [ctypes.c_int, ctypes.c_void_p]


def futimens(fd: int, times: bytes | None) -> None:
    """utimensat(fd, NULL, times, 0): ``times`` as for utimensat."""
    buf = None if times is None else ctypes.create_string_buffer(times, 32)
    _syscall.check(_futimens(fd, buf), f"futimens({fd})")


def file_setattr(dirfd: int, path: str, attr: bytes, flags: int) -> None:
    """file_setattr(2): inode flags and project id from a struct file_attr."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    _syscall.syscall(
        _NR_FILE_SETATTR, dirfd, ctypes.create_string_buffer(os.fsencode(path)), buf, len(attr),
        flags,
        what=f"file_setattr({path!r})",
    )  # fmt: skip
