"""Sends READY only after a second, so signals land during the supervisor's wait."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run

real_write = os.write


def write(fd, data):  # type: ignore[no-untyped-def]
    if data == b"R":
        time.sleep(1.0)
    return real_write(fd, data)


run(lambda w: setattr(w.os, "write", write))
