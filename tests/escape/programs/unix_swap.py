"""Threat: a unix socket the sandbox really bound is recorded as its own;
swap another socket in under that name (a hard link renamed over it) or
under a name the sandbox never bound (a hard link, a rename), hoping the
name alone decides.

Usage: unix_swap.py READY PLACED   (cwd: the workspace)
Binds own.sock, connects to it ("own-before"), writes READY and waits
(at most 20 s) for PLACED, written once the test has replaced own.sock and
placed linked.sock and renamed.sock; then connects to the three
("own-replaced", "linked", "renamed").
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


def connect(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        return "connected"


ready, placed = sys.argv[1], sys.argv[2]
own = os.path.abspath("own.sock")
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
    srv.bind(own)
    srv.listen(8)
    report("own-before", lambda: connect(own))
    with open(ready, "w") as f:
        f.write("ready\n")
    deadline = time.monotonic() + 20
    while not os.path.exists(placed) and time.monotonic() < deadline:
        time.sleep(0.02)
    report("placed", lambda: os.stat(placed) and "yes")
    report("own-replaced", lambda: connect(own))
    report("linked", lambda: connect(os.path.abspath("linked.sock")))
    report("renamed", lambda: connect(os.path.abspath("renamed.sock")))
sys.exit(DONE)
