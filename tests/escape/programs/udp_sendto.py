"""Threat: exfiltrate over UDP without connect(): sendto() with a
destination on an unconnected socket, to a port the policy denies.

Usage: udp_sendto.py ALLOWED_PORT DENIED_PORT   (both on 127.0.0.1)
Prints "allowed: ..." (the control datagram) and "denied: ...".
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42


allowed, denied = int(sys.argv[1]), int(sys.argv[2])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    report("allowed", lambda: s.sendto(b"control", ("127.0.0.1", allowed)))
    report("denied", lambda: s.sendto(b"exfiltrated", ("127.0.0.1", denied)))
sys.exit(DONE)
