"""Sends the fd, gets ACK, then stalls instead of READY."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run

real_write = os.write


def write(fd, data):  # type: ignore[no-untyped-def]
    if data == b"R":
        time.sleep(120)  # clock_nanosleep: not trapped
    return real_write(fd, data)


run(lambda w: setattr(w.os, "write", write))
