"""Kills itself right after READY, racing the supervisor's attach."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run

real_write = os.write


def write(fd, data):  # type: ignore[no-untyped-def]
    n = real_write(fd, data)
    if data == b"R":
        os.kill(os.getpid(), signal.SIGKILL)
    return n


run(lambda w: setattr(w.os, "write", write))
