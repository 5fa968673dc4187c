"""Threat: reach a denied IPv4 address through an IPv6 socket with the
IPv4-mapped form ::ffff:127.0.0.3, hoping the policy compares it as an
IPv6 address (not the IPv4 address it is).

Usage: connect_v4mapped.py ALLOWED_PORT DENIED_PORT
Prints "allowed: ..." (the control, 127.0.0.1:ALLOWED_PORT) and "mapped: ...".
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


def connect(family, addr):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(addr)
        return "connected"


allowed, denied = int(sys.argv[1]), int(sys.argv[2])
report("allowed", lambda: connect(socket.AF_INET, ("127.0.0.1", allowed)))
report("mapped", lambda: connect(socket.AF_INET6, ("::ffff:127.0.0.3", denied)))
sys.exit(DONE)
