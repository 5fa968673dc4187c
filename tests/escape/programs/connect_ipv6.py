"""Threat: the policy allows one IPv4 loopback port; reach a different
service over IPv6 loopback (::1), hoping only IPv4 is checked.

Usage: connect_ipv6.py ALLOWED_PORT DENIED_V6_PORT
Prints "allowed: ..." (the control, 127.0.0.1:ALLOWED_PORT) and "ipv6: ...".
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
report("ipv6", lambda: connect(socket.AF_INET6, ("::1", denied)))
sys.exit(DONE)
