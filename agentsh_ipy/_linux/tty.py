"""The controlling terminal's foreground process group, handed to the sandbox.

The sandbox runs in a process group of its own (so that ``kill(0, ...)``
means its own processes, not the supervisor); when the supervisor owns the
terminal's foreground, it hands it over, as a shell does for a job, and takes
it back at the end.
"""

from __future__ import annotations

import contextlib
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
