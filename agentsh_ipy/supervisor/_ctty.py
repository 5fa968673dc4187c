"""/dev/tty opened for the caller (notify mode).

/dev/tty (5:0) names the opener's controlling terminal, so the supervisor
opening it would get its own. Continuing the call instead would let the
kernel read the path buffer again after the decision (a racing thread could
put another name there). So the supervisor opens the caller's terminal
itself: the device in field 7 of /proc/TID/stat, by its node in /dev, with
RESOLVE_NO_SYMLINKS, and only if the node it got is that device. The policy
was decided on /dev/tty, the name the caller asked for. Anything that does
not add up refuses the open; none continues.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from .._linux import files, tty

OPENER_TERMINAL = os.makedev(tty.TTY_MAJOR_CTTY, 0)


def names_opener_terminal(path: str) -> bool:
    """Whether ``path`` (resolved) is /dev/tty or another node of 5:0."""
    if path == "/dev/tty":
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    return is_opener_terminal(st)


def is_opener_terminal(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == OPENER_TERMINAL


def open_terminal(tid: int, flags: int) -> tuple[int, str]:
    """Open ``tid``'s controlling terminal with ``flags`` (O_NOCTTY among
    them); returns the fd and the node opened. ENXIO when it has none, as
    the kernel answers; EACCES when the node is not its terminal."""
    dev = tty.tty_nr(tid)
    if dev == 0:
        raise OSError(errno.ENXIO, "the caller has no controlling terminal")
    node = tty.node_of(dev)
    fd = files.openat2(node, flags, 0, files.RESOLVE_NO_SYMLINKS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != dev:
            raise OSError(errno.EACCES, f"{node} is not the caller's terminal")
        # A pseudo-terminal's number is per devpts instance: where the
        # caller holds its terminal open, the node must be that instance's.
        held = _held_instance(tid, dev)
        if held is not None and held != st.st_dev:
            raise OSError(errno.EACCES, f"the caller's terminal is not {node}")
    except BaseException:
        os.close(fd)
        raise
    return fd, node


def _held_instance(tid: int, dev: int) -> int | None:
    """st_dev of the file system of a terminal ``dev`` the caller has open."""
    try:
        fds = os.listdir(f"/proc/{tid}/fd")
    except OSError:
        return None
    for name in fds:
        with contextlib.suppress(OSError):
            st = os.stat(f"/proc/{tid}/fd/{name}")
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == dev:
                return st.st_dev
    return None
