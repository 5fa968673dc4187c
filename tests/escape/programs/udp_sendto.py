"""Threat: exfiltrate over UDP without connect(): sendto() with a
destination on an unconnected socket, to a port the policy denies.

Usage: udp_sendto.py ALLOWED_PORT DENIED_PORT   (both on 127.0.0.1)
Prints "allowed: ..." (the control datagram) and "denied: ...".
"""

import errno
import socket
import sys

DONE = 42


def report(label, fn):
    try:
        value = fn()
    except OSError as e:
        print(f"{label}: {errno.errorcode.get(e.errno, e.errno)}", flush=True)
        return None
    print(f"{label}: ok {value!r}", flush=True)
    return value


allowed, denied = int(sys.argv[1]), int(sys.argv[2])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    report("allowed", lambda: s.sendto(b"control", ("127.0.0.1", allowed)))
    report("denied", lambda: s.sendto(b"exfiltrated", ("127.0.0.1", denied)))
sys.exit(DONE)
