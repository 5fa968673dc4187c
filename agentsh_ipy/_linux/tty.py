"""The controlling terminal's foreground process group, handed to the sandbox.

The sandbox runs in a process group of its own (so that ``kill(0, ...)``
means its own processes, not the supervisor); when the supervisor owns the
terminal's foreground, it hands it over, as a shell does for a job, and takes
it back at the end.
"""

from __future__ import annotations

import contextlib
import errno
import os


class Foreground:
    def __init__(self) -> None:
        self.fd = -1
        self.ours = os.getpgrp()
        with contextlib.suppress(OSError):
            self.fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            self.active = self.fd >= 0 and os.tcgetpgrp(self.fd) == self.ours
        except OSError:
            self.active = False

    def give(self, pgid: int) -> None:
        if self.active:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.fd, pgid)

    def take_back(self) -> None:
        """Needs SIGTTOU ignored: we are a background group by then."""
        if self.active:
            with contextlib.suppress(OSError):
                os.tcsetpgrp(self.fd, self.ours)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# -- another process's controlling terminal ------------------------------------
TTY_MAJOR_CTTY = 5  # /dev/tty is 5:0, a name for the opener's terminal
_PTS_MAJORS = range(136, 144)  # UNIX98 pseudo-terminal slaves, 256 each


def tty_nr(tid: int) -> int:
    """Field 7 of /proc/TID/stat: the device of its controlling terminal
    (0: none). The command name (field 2) may hold spaces and parentheses:
    the fields that follow start after its last ')'."""
    with open(f"/proc/{tid}/stat", "rb") as f:
        rest = f.read().rsplit(b")", 1)[1].split()
    return int(rest[4])  # state, ppid, pgrp, session, tty_nr


def node_of(dev: int) -> str:
    """The node in /dev naming the character device ``dev`` (a tty_nr): a
    pseudo-terminal by its number, any other terminal by the name the kernel
    gives it (/sys/dev/char/MAJ:MIN/uevent, DEVNAME)."""
    major, minor = os.major(dev), os.minor(dev)
    if major in _PTS_MAJORS:
        return f"/dev/pts/{(major - _PTS_MAJORS[0]) * 256 + minor}"
    with open(f"/sys/dev/char/{major}:{minor}/uevent", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key == "DEVNAME" and value and ".." not in value.split("/"):
                return f"/dev/{value}"
    raise OSError(errno.ENXIO, f"no /dev name for terminal {major}:{minor}")
