"""Answers READY with a wrong byte."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import run

real_write = os.write


def write(fd, data):  # type: ignore[no-untyped-def]
    return real_write(fd, b"Q" if data == b"R" else data)


run(lambda w: setattr(w.os, "write", write))
