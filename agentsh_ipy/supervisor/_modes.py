"""The caller's umask on what the supervisor creates for it, without a
thread umask of the supervisor's own.

The kernel applies the creating thread's umask. Where the supervisor's
thread cannot have its own fs_struct (unshare(CLONE_FS) is refused, as
under Docker's default seccomp profile without CAP_SYS_ADMIN), the process
umask is left alone (the supervisor may be the user's IPython process) and
the caller's is applied explicitly: the kernel creates with
``mode & ~caller`` and then removes our own umask's bits too, so what it
creates is never more open than asked; the bits our umask removed that the
caller's would have left are put back with fchmod, only on what this call
created (an open tries O_EXCL first to know that).

Most often nothing is put back (both umasks 022): one open or mkdir, as
asked. A directory with a default ACL is the difference: the kernel ignores
the umask there, and the caller's is applied all the same (the result is
never more open than the kernel's own).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from .._linux import files

TRIES = 8  # an open racing a delete and re-create of its name, at most


def own_umask() -> int:
    """This thread's umask, read without changing it (os.umask would)."""
    return files.umask_of("thread-self")


def lost(want: int) -> int:
    """The permission bits of ``want`` (the caller's mode, its umask
    applied) that our umask would take away."""
    return want & own_umask() & 0o777


def _restore(fd: int, want: int) -> None:
    # The special bits as the kernel left them (it strips setgid where the
    # caller may not have it); the permission bits as the caller's umask.
    st = os.fstat(fd)
    os.fchmod(fd, (stat.S_IMODE(st.st_mode) & 0o7000) | (want & 0o777))


def open_creating(open_: Callable[[int], int], flags: int, want: int) -> int:
    """``open_(flags)`` for an open with O_CREAT, ``open_`` creating with
    mode ``want``: the fd, and a file this open created has ``want``'s
    permission bits exactly."""
    if not lost(want):
        return open_(flags)
    if flags & os.O_EXCL:
        return _restored(open_(flags), want)
    for _ in range(TRIES):
        try:
            fd = open_(flags | os.O_EXCL)
        except FileExistsError:
            try:  # it exists: not ours to change
                return open_(flags & ~os.O_CREAT)
            except FileNotFoundError:
                continue  # deleted in between: try to create it again
        return _restored(fd, want)
    raise OSError(errno.EAGAIN, f"a file created and deleted {TRIES} times while opening it")


def _restored(fd: int, want: int) -> int:
    try:
        _restore(fd, want)
    except BaseException:
        os.close(fd)
        raise
    return fd


def fix_created(dir_fd: int, leaf: str, kind: int, want: int) -> None:
    """After a mkdir or mknod of ``leaf`` in ``dir_fd`` with mode ``want``:
    put back what our umask removed, on the node there only if it is the
    one the kernel would have made (its type, our owner, exactly the bits
    it gets): a node a racing thread put there instead is left as it is."""
    gone = lost(want)
    if not gone:
        return
    fd = os.open(leaf, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        made = want & 0o777 & ~gone
        if (
            stat.S_IFMT(st.st_mode) == kind
            and st.st_uid == os.geteuid()
            and stat.S_IMODE(st.st_mode) & 0o777 == made
        ):
            os.chmod(f"/proc/self/fd/{fd}", (stat.S_IMODE(st.st_mode) & 0o7000) | (want & 0o777))
    finally:
        os.close(fd)
