"""Threat: exfiltrate over UDP with the destination inside a msghdr
(sendmsg msg_name), or hidden as the second message of a sendmmsg batch
whose first message goes to the allowed port.

Usage: udp_sendmsg.py sendmsg|sendmmsg ALLOWED_PORT DENIED_PORT  (127.0.0.1)
Prints "allowed: ..." (a control sendto) and "denied: ...".
"""

import ctypes
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42

libc = ctypes.CDLL(None, use_errno=True)


class Iovec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))


class MsgHdr(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    )


class MMsgHdr(ctypes.Structure):
    _fields_ = (("hdr", MsgHdr), ("len", ctypes.c_uint))


def sockaddr_in(port):
    raw = struct.pack("=H", socket.AF_INET) + struct.pack("!H", port)
    return ctypes.create_string_buffer(raw + socket.inet_aton("127.0.0.1") + bytes(8), 16)


def sendmmsg(s, ports):
    keep = []
    msgs = (MMsgHdr * len(ports))()
    for i, port in enumerate(ports):
        name = sockaddr_in(port)
        data = ctypes.create_string_buffer(b"exfiltrated", 11)
        iov = Iovec(ctypes.cast(data, ctypes.c_void_p), 11)
        keep += [name, data, iov]
        msgs[i].hdr.name = ctypes.cast(name, ctypes.c_void_p)
        msgs[i].hdr.namelen = 16
        msgs[i].hdr.iov = ctypes.pointer(iov)
        msgs[i].hdr.iovlen = 1
    n = libc.sendmmsg(s.fileno(), msgs, len(ports), 0)
    if n < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return n


variant, allowed, denied = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    report("allowed", lambda: s.sendto(b"control", ("127.0.0.1", allowed)))
    if variant == "sendmsg":
        report("denied", lambda: s.sendmsg([b"exfiltrated"], [], 0, ("127.0.0.1", denied)))
    else:
        report("denied", lambda: sendmmsg(s, [allowed, denied]))
sys.exit(DONE)
