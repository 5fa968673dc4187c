"""Threat: reach a service on this host that the sandbox did not start
(another sandbox's server, the host's own listeners, a unix socket).

Usage: local_connect.py LABEL=SPEC ...   where SPEC is
    tcp/HOST/PORT      connect (IPv4 or IPv6 by the host's spelling)
    udp/HOST/PORT      sendto on an unconnected socket
    unix/PATH          connect a stream socket (unix/@NAME: abstract)
    unixdgram/PATH     sendto on an unbound datagram socket
Prints "LABEL: ok ..." or "LABEL: ERRNO" per attempt.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
T = 5


def attempt(spec):
    kind, _, rest = spec.partition("/")
    if kind in ("tcp", "udp"):
        host, port = rest.rsplit("/", 1)
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        typ = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
        addr = (host, int(port))
    else:
        fam = socket.AF_UNIX
        typ = socket.SOCK_STREAM if kind == "unix" else socket.SOCK_DGRAM
        addr = "\0" + rest[1:] if rest.startswith("@") else rest
    with socket.socket(fam, typ) as s:
        s.settimeout(T)
        if typ == socket.SOCK_STREAM:
            s.connect(addr)
            return "connected"
        return s.sendto(b"from the sandbox", addr)


for arg in sys.argv[1:]:
    label, _, spec = arg.partition("=")
    report(label, lambda spec=spec: attempt(spec))
sys.exit(DONE)
