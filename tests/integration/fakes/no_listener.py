"""A host whose seccomp refuses a listener (EBUSY, as inside another
sandbox), while a plain filter still installs: only ptrace mode can work."""

import errno
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run


def patch(w):  # type: ignore[no-untyped-def]
    real = w.install_filter

    def install_filter(program, seccomp_nr, listener=True):  # type: ignore[no-untyped-def]
        if listener:
            raise OSError(errno.EBUSY, "seccomp(SET_MODE_FILTER): Device or resource busy")
        return real(program, seccomp_nr, listener)

    w.install_filter = install_filter


run(patch)
