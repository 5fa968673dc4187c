"""Threat: sub-commands of allowed calls that reach outside the sandbox
(issue 17): a signal owner outside (F_SETOWN, FIOSETOWN, with F_SETSIG and
O_ASYNC), a lease that stalls other processes' opens, source routes and
interfaces in IP options and sendmsg control messages (loopback addresses
only), new namespaces, and requests and options no list names.

Usage: subcommands.py MODE [ARG]
  setown PID | setown-group PID | fiosetown PID: make PID (or its group)
      the SIGIO owner of a socket with SIGKILL as the signal, then make it
      readable; prints "owner: ok|ERRNO" and waits (2 s at most) for PID to die
  setlease FILE: a read lease on FILE; prints "setlease: ok|ERRNO"
  reroute: IP_OPTIONS with a loose source route through 127.0.0.2, and
      sendmsg to 127.0.0.1 with IP_RETOPTS, and with IP_PKTINFO naming an
      interface; prints "ip_options", "retopts", "pktinfo"
  unshare-net | unshare-uts: unshare that namespace (then, for uts, set the
      host name inside it); prints "unshare: ok|ERRNO" ("sethostname" too)
  unknown: SIOCETHTOOL (ETHTOOL_GLINK of lo), PR_SET_PTRACER, an unassigned
      prctl option; prints "ethtool", "ptracer", "prctl-unknown"
"""

import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _hostile import report

DONE = 42
F_SETSIG = 10
FIOSETOWN = 0x8901
IP_OPTIONS, IP_RETOPTS, IP_PKTINFO = 4, 7, 8
SIOCETHTOOL, ETHTOOL_GLINK = 0x8946, 0xA
PR_SET_PTRACER = 0x59616D61
CLONE = {"unshare-net": 0x40000000, "unshare-uts": 0x04000000}

libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def check(r):
    if r < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return r


def dead(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def owner(mode, pid):
    a, b = socket.socketpair()
    fd = a.fileno()
    if mode == "fiosetown":
        set_owner = lambda: fcntl.ioctl(fd, FIOSETOWN, struct.pack("i", pid))  # noqa: E731
    else:
        target = -pid if mode == "setown-group" else pid
        set_owner = lambda: fcntl.fcntl(fd, fcntl.F_SETOWN, target)  # noqa: E731
    report("owner", set_owner)
    fcntl.fcntl(fd, F_SETSIG, signal.SIGKILL)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC | os.O_NONBLOCK)
    b.send(b"x")  # data for a: SIGIO (here SIGKILL) to its owner
    for _ in range(20):
        if dead(pid):
            break
        time.sleep(0.1)
    print(f"victim-dead: {'yes' if dead(pid) else 'no'}", flush=True)


def lsrr():
    """A loose source route through 127.0.0.2, padded to a multiple of 4."""
    return bytes([131, 7, 4]) + socket.inet_aton("127.0.0.2") + b"\0"


def reroute():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    report("ip_options", lambda: s.setsockopt(socket.IPPROTO_IP, IP_OPTIONS, lsrr()))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dest = ("127.0.0.1", 9)
    report("retopts", lambda: u.sendmsg([b"x"], [(socket.IPPROTO_IP, IP_RETOPTS, lsrr())], 0, dest))
    info = struct.pack("i4s4s", 1, bytes(4), bytes(4))  # interface 1 (lo), no source
    report("pktinfo", lambda: u.sendmsg([b"x"], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, dest))


def unknown():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_GLINK, 0))
    ifreq = struct.pack("16sP", b"lo", ctypes.addressof(value))
    report("ethtool", lambda: fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq) and None)
    report("ptracer", lambda: check(libc.prctl(PR_SET_PTRACER, 0, 0, 0, 0)))
    report("prctl-unknown", lambda: check(libc.prctl(0x7FFF0000, 0, 0, 0, 0)))


mode = sys.argv[1]
if mode in ("setown", "setown-group", "fiosetown"):
    owner(mode, int(sys.argv[2]))
elif mode == "setlease":
    fd = os.open(sys.argv[2], os.O_RDONLY)
    report("setlease", lambda: fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK))
elif mode == "reroute":
    reroute()
elif mode in CLONE:
    if report("unshare", lambda: check(libc.unshare(CLONE[mode]))) is not None and "uts" in mode:
        report("sethostname", lambda: socket.sethostname("agentsh-escape"))
elif mode == "unknown":
    unknown()
sys.exit(DONE)
