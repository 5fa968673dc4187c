"""A change a tracee asks for on one of its fds (fchmod, fchown, futimens,
fsetxattr, inode flags), decided and made on the supervisor's own copy of
that fd.

Deciding on /proc/TID/fd/N and letting the kernel continue is a race: a
sibling thread (or a process sharing the fd table) can dup2() another file
onto N between the decision and the call. A copy taken with pidfd_getfd
shares the open file description, so the file the copy names when we decide
is the file the change reaches when we make it on the copy.

Without pidfd_getfd (a host that refuses it, as Docker's default profile
does without CAP_SYS_PTRACE) the fallback is an O_PATH open of
/proc/TID/fd/N: it pins the same file, which is decided on by its own path,
and changes that can be made by path (mode, owner, times, xattrs) are made
on /proc/self/fd/M; an inode-flag ioctl, which needs an open file, on a
read-only reopen of that name (regular files and directories only).
"""

from __future__ import annotations

import errno
import os
import stat
import weakref

from .._linux import files


class FdCopy:
    """The supervisor's copy of a tracee's fd, closed when dropped (a request
    whose notification went stale is never answered)."""

    def __init__(self, fd: int, shared: bool) -> None:
        self.fd = fd
        # True: the same open file description (pidfd_getfd); False: an
        # O_PATH fd on the same file (the fallback).
        self.shared = shared
        self._close = weakref.finalize(self, os.close, fd)
        self.path = os.readlink(f"/proc/self/fd/{fd}")

    @property
    def target(self) -> int | str:
        """What os.chmod, os.chown, os.setxattr (...) act on: the fd itself,
        or the pinned file by its /proc/self/fd name."""
        return self.fd if self.shared else f"/proc/self/fd/{self.fd}"

    def close(self) -> None:
        self._close()

    def reopened(self) -> int:
        """A read-only open file of what this copy names (the copy itself
        when shared): a regular file or a directory, never a device or a
        FIFO, whose open would do more than name it. The caller closes it
        unless it is ``self.fd``."""
        if self.shared:
            return self.fd
        if not stat.S_ISREG(mode := os.fstat(self.fd).st_mode) and not stat.S_ISDIR(mode):
            raise OSError(errno.EPERM, "not a regular file or a directory (without pidfd_getfd)")
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        return os.open(f"/proc/self/fd/{self.fd}", flags)


def copy(pid: int, tid: int, fd: int) -> FdCopy:
    """A copy of fd ``fd`` of thread ``tid`` (process ``pid``). OSError when
    it is not an open fd, or the tracee cannot be reached."""
    try:
        return FdCopy(files.fd_copy(pid, tid, fd), True)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOSYS):  # EBADF: no such fd
            raise
    return FdCopy(os.open(f"/proc/{tid}/fd/{fd}", os.O_PATH | os.O_CLOEXEC), False)
