"""Threat: change the network through routing netlink (what `ip addr add`
does), by each way a message reaches the kernel. Run only inside a network
namespace the test made: it adds addresses to that namespace's lo.

For each way, adds 10.200.0.N/24 to lo and prints "LABEL: ok" or
"LABEL: ERRNO" (from the send, or from the kernel's answer):
``sendto`` (an address: trapped), ``sendmsg`` (connected, no address:
trapped), ``batch`` (a no-op message first, the change second, one
sendmsg), ``send`` (connected, send(): not trapped, the kernel's
capability check alone). Exits 42 at its end.
"""

import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
RTM_NEWADDR, NLMSG_NOOP, NLMSG_ERROR = 20, 1, 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x200, 0x400
IFA_ADDRESS, IFA_LOCAL = 1, 2


def new_address(n, seq):
    addr = socket.inet_aton(f"10.200.0.{n}")
    body = struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, socket.if_nametoindex("lo"))
    for kind in (IFA_LOCAL, IFA_ADDRESS):
        body += struct.pack("=HH", 8, kind) + addr
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
    return struct.pack("=IHHII", 16 + len(body), RTM_NEWADDR, flags, seq, 0) + body


def noop(seq):
    return struct.pack("=IHHII", 16, NLMSG_NOOP, NLM_F_REQUEST, seq, 0)


def answer(sock):
    """The kernel's acknowledgement: ok, or its error."""
    sock.settimeout(5)
    data = sock.recv(65536)
    kind = struct.unpack_from("=H", data, 4)[0]
    if kind == NLMSG_ERROR:
        err = struct.unpack_from("=i", data, 16)[0]
        if err:
            raise OSError(-err, os.strerror(-err))
    return "added"


def attempt(how, n):
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        if how == "sendto":
            s.sendto(new_address(n, n), (0, 0))
        else:
            s.connect((0, 0))
            if how == "sendmsg":
                s.sendmsg([new_address(n, n)])
            elif how == "batch":
                s.sendmsg([noop(100 + n) + new_address(n, n)])
            else:
                s.send(new_address(n, n))
        return answer(s)


for n, how in enumerate(("sendto", "sendmsg", "batch", "send"), 1):
    report(how, lambda how=how, n=n: attempt(how, n))
sys.exit(DONE)
