"""What the kernel says about this host's network: the type of the route to
an address (rtnetlink RTM_GETROUTE), which sockets are bound where
(/proc/net/{tcp,udp}*, sock_diag for unix sockets), and which sockets a
process holds (/proc/PID/fd). All of it is of the caller's network
namespace; nothing here decides anything."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
RTA_DST = 1
UDIAG_SHOW_NAME = 0x1
UDIAG_SHOW_VFS = 0x2
UNIX_DIAG_NAME = 0
UNIX_DIAG_VFS = 1

# Route types (rtm_type): what the kernel does with a packet to the address.
RTN_UNICAST = 1
RTN_LOCAL = 2
RTN_BROADCAST = 3
RTN_ANYCAST = 4
RTN_MULTICAST = 5

TCP_LISTEN = 10  # socket states, as /proc/net/* and sock_diag print them

_NLMSGHDR = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")
_UNIX_DIAG_REQ = struct.Struct("=BBHIIIII")
_UNIX_DIAG_MSG = struct.Struct("=BBBBIII")
_TIMEOUT = 2.0  # the kernel answers at once; a stall is a bug, not a wait


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(data: bytes, offset: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        out[kind] = data[offset + _RTATTR.size : offset + length]
        offset += _align(length)
    return out


def _messages(data: bytes) -> list[tuple[int, bytes]]:
    """(type, payload) of each netlink message in one datagram."""
    out = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        out.append((kind, data[offset + _NLMSGHDR.size : offset + length]))
        offset += _align(length)
    return out


def _netlink(protocol: int) -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
    s.settimeout(_TIMEOUT)  # a socket object's timeout does bound recv (unlike os.read)
    return s


def _error(payload: bytes) -> int:
    return -struct.unpack_from("=i", payload)[0]


def route_type(ip: str) -> int:
    """The type of the kernel's route to ``ip`` (RTN_LOCAL for an address of
    this host, RTN_UNICAST for one reached through an interface, ...).
    Raises OSError with the kernel's errno (ENETUNREACH: no route)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    dst = socket.inet_pton(family, ip)
    attr = _RTATTR.pack(_RTATTR.size + len(dst), RTA_DST) + dst
    body = _RTMSG.pack(family, len(dst) * 8, 0, 0, 0, 0, 0, 0, 0) + attr
    msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETROUTE, NLM_F_REQUEST, 1, 0) + body
    with _netlink(socket.NETLINK_ROUTE) as s:
        s.send(msg)
        for kind, payload in _messages(s.recv(65536)):
            if kind == NLMSG_ERROR:
                err = _error(payload)
                raise OSError(err, f"route lookup for {ip}: {os.strerror(err)}")
            if kind == RTM_NEWROUTE:
                return int(_RTMSG.unpack_from(payload)[7])
    raise OSError(0, f"route lookup for {ip}: no answer")


@dataclass(frozen=True)
class InetSocket:
    proto: str  # "tcp" or "udp"
    ip: str  # the local address, IPv4 or IPv6 text
    port: int
    state: int
    inode: int


def _proc_addr(text: str) -> tuple[str, int]:
    """/proc/net's "0100007F:1F90": 32-bit words printed in host order."""
    hexaddr, _, hexport = text.partition(":")
    words = [int(hexaddr[i : i + 8], 16) for i in range(0, len(hexaddr), 8)]
    raw = struct.pack(f"={len(words)}I", *words)
    family = socket.AF_INET6 if len(raw) == 16 else socket.AF_INET
    return socket.inet_ntop(family, raw), int(hexport, 16)


def inet_sockets(port: int) -> list[InetSocket]:
    """Every TCP and UDP socket (IPv4 and IPv6) whose local port is ``port``.
    A table the kernel was built without is skipped."""
    out = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(f"/proc/net/{proto}", encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            ip, local_port = _proc_addr(fields[1])
            if local_port == port:
                state, inode = int(fields[3], 16), int(fields[9])
                out.append(InetSocket(proto.rstrip("6"), ip, local_port, state, inode))
    return out


@dataclass(frozen=True)
class UnixSocket:
    type: int  # SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
    state: int
    inode: int  # the socket's own inode (socket:[N] in /proc/PID/fd)
    name: bytes | None  # the bound address; abstract names start with NUL
    vfs: tuple[int, int] | None  # (st_dev, st_ino) of a bound pathname socket's file


def unix_sockets() -> list[UnixSocket]:
    """Every unix socket of this network namespace, by sock_diag."""
    req = _UNIX_DIAG_REQ.pack(socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0,
                              UDIAG_SHOW_NAME | UDIAG_SHOW_VFS, 0xFFFFFFFF, 0xFFFFFFFF)  # fmt: skip
    msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(req), SOCK_DIAG_BY_FAMILY,
                         NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req  # fmt: skip
    out = []
    with _netlink(NETLINK_SOCK_DIAG) as s:
        s.send(msg)
        while True:
            for kind, payload in _messages(s.recv(1 << 16)):
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    err = _error(payload)
                    raise OSError(err, f"sock_diag of unix sockets: {os.strerror(err)}")
                if kind != SOCK_DIAG_BY_FAMILY or len(payload) < _UNIX_DIAG_MSG.size:
                    continue
                _fam, kind_, state, _pad, inode, _c0, _c1 = _UNIX_DIAG_MSG.unpack_from(payload)
                attrs = _attrs(payload, _UNIX_DIAG_MSG.size)
                vfs = None
                if UNIX_DIAG_VFS in attrs and len(attrs[UNIX_DIAG_VFS]) >= 8:
                    ino, dev = struct.unpack_from("=II", attrs[UNIX_DIAG_VFS])
                    # The kernel's own dev_t (major << 20 | minor), not stat's.
                    vfs = (os.makedev(dev >> 20, dev & 0xFFFFF), ino)
                out.append(UnixSocket(kind_, state, inode, attrs.get(UNIX_DIAG_NAME), vfs))


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` holds open (OSError when
    its fds cannot be read: gone, or not ours to look at)."""
    out = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out
