"""Threat: sockets whose traffic the address decisions never see (issue 17):
a packet socket (raw frames to any host), a raw IPv4 socket (a destination
the audit cannot show), netlink sockets of other protocols (audit,
generic: the kernel's control planes). Creating the socket is the attempt:
nothing is ever sent.

Usage: socket_families.py packet | raw | netlink | control
"control": the sockets ordinary programs need, which must keep working:
AF_INET/AF_INET6 stream and datagram (with SOCK_NONBLOCK|SOCK_CLOEXEC),
AF_UNIX, a unix socketpair, NETLINK_ROUTE, getaddrinfo and if_nameindex.
Prints "LABEL: ok ..." or "LABEL: ERRNO" per socket.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
ETH_P_ALL = 0x0003
NETLINK_AUDIT, NETLINK_GENERIC, NETLINK_ROUTE = 9, 16, 0
FLAGS = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


def make(family, kind, proto=0):
    def run():
        s = socket.socket(family, kind, proto)
        s.close()
        return f"{family}/{kind}/{proto}"

    return run


def pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.close()
    b.close()
    return "pair"


variant = sys.argv[1]
if variant == "packet":
    report("packet", make(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)))
    report("packet-dgram", make(socket.AF_PACKET, socket.SOCK_DGRAM | FLAGS))
elif variant == "raw":
    report("raw", make(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
    report("raw6", make(socket.AF_INET6, socket.SOCK_RAW | FLAGS, socket.IPPROTO_ICMPV6))
elif variant == "netlink":
    report("netlink-audit", make(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT))
    report("netlink-generic", make(socket.AF_NETLINK, socket.SOCK_DGRAM | FLAGS, NETLINK_GENERIC))
elif variant == "control":
    report("inet-stream", make(socket.AF_INET, socket.SOCK_STREAM | FLAGS))
    report("inet-dgram", make(socket.AF_INET, socket.SOCK_DGRAM))
    report("inet6-stream", make(socket.AF_INET6, socket.SOCK_STREAM))
    report("inet6-dgram", make(socket.AF_INET6, socket.SOCK_DGRAM | FLAGS))
    report("unix", make(socket.AF_UNIX, socket.SOCK_STREAM | FLAGS))
    report("socketpair", pair)
    report("netlink-route", make(socket.AF_NETLINK, socket.SOCK_RAW | FLAGS, NETLINK_ROUTE))
    report("getaddrinfo", lambda: len(socket.getaddrinfo("localhost", 80)))
    report("if_nameindex", lambda: [name for _i, name in socket.if_nameindex()])
else:
    sys.exit(f"unknown variant {variant}")
sys.exit(DONE)
