"""A change a tracee asks for on one of its fds (fchmod, fchown, futimens,
fsetxattr, inode flags), decided and made on the supervisor's own copy of
that fd.

Deciding on /proc/TID/fd/N and letting the kernel continue is a race: a
sibling thread (or a process sharing the fd table) can dup2() another file
onto N between the decision and the call. A copy taken with pidfd_getfd
shares the open file description, so the file the copy names when we decide
is the file the change reaches when we make it on the copy.

Without pidfd_getfd (ptrace mode on a host that refuses it) the fallback is
an O_PATH open of /proc/TID/fd/N: it pins the same file, and changes that can
be made by path (mode, owner, times, xattrs) are made on /proc/self/fd/M; an
inode-flag ioctl needs the real open file and is refused there.
"""

from __future__ import annotations

import errno
import os
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


def copy(pid: int, tid: int, fd: int) -> FdCopy:
    """A copy of fd ``fd`` of thread ``tid`` (process ``pid``). OSError when
    it is not an open fd, or the tracee cannot be reached."""
    try:
        return FdCopy(files.fd_copy(pid, tid, fd), True)
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOSYS):  # EBADF: no such fd
            raise
    return FdCopy(os.open(f"/proc/{tid}/fd/{fd}", os.O_PATH | os.O_CLOEXEC), False)
