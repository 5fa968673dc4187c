"""What the kernel says about this host's network: the type of the route to
an address (rtnetlink RTM_GETROUTE), which sockets are bound where
(sock_diag), and which sockets a process holds (/proc/PID/fd). All of it is
of the caller's network namespace; nothing here decides anything."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
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
# inet_diag_req_v2 up to its inet_diag_sockid (48 bytes, zero: a dump of all)
_INET_DIAG_REQ = struct.Struct("=BBBBI")
# inet_diag_msg (72 bytes): family, state, timer, retrans, then the sockid
# (sport and dport in network order, src and dst 16 bytes each, if, cookie),
# expires, rqueue, wqueue, uid, inode
_INET_DIAG_MSG_SIZE = 72
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
    return -int(struct.unpack_from("=i", payload)[0])


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


def _dump(s: socket.socket, req: bytes, what: str) -> Iterator[bytes]:
    """The payload of every SOCK_DIAG_BY_FAMILY answer to one dump request."""
    s.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(req), SOCK_DIAG_BY_FAMILY,
                          NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req)  # fmt: skip
    while True:
        for kind, payload in _messages(s.recv(1 << 16)):
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                err = _error(payload)
                raise OSError(err, f"sock_diag of {what}: {os.strerror(err)}")
            if kind == SOCK_DIAG_BY_FAMILY:
                yield payload


# (protocol, the states asked for): TCP listeners only (what a connect
# reaches; the listen table is small however busy the host), every UDP socket.
_INET_DUMPS = (
    ("tcp", socket.IPPROTO_TCP, 1 << TCP_LISTEN),
    ("udp", socket.IPPROTO_UDP, 0xFFFFFFFF),
)


def inet_sockets(port: int) -> list[InetSocket]:
    """The TCP listeners and the UDP sockets (IPv4 and IPv6) whose local port
    is ``port``, by sock_diag: the kernel filters by state, where
    /proc/net/tcp lists every connection and TIME_WAIT entry."""
    out = []
    with _netlink(NETLINK_SOCK_DIAG) as s:
        for proto, number, states in _INET_DUMPS:
            for family in (socket.AF_INET, socket.AF_INET6):
                req = _INET_DIAG_REQ.pack(family, number, 0, 0, states) + bytes(48)
                for payload in _dump(s, req, f"{proto} sockets"):
                    if len(payload) < _INET_DIAG_MSG_SIZE:
                        continue
                    sport = struct.unpack_from("!H", payload, 4)[0]
                    if sport != port:
                        continue
                    src = payload[8:12] if family == socket.AF_INET else payload[8:24]
                    inode = struct.unpack_from("=I", payload, 68)[0]
                    ip = socket.inet_ntop(family, src)
                    out.append(InetSocket(proto, ip, sport, payload[1], inode))
    return out


_NO_COOKIE = 0xFFFFFFFF  # INET_DIAG_NOCOOKIE, in each half of the cookie


def tcp_inode(local: tuple[str, int], remote: tuple[str, int]) -> int | None:
    """The inode of the IPv4 TCP socket whose own address is ``local`` and
    whose peer is ``remote`` (one exact sock_diag lookup, any state); None
    when there is none."""
    sockid = (
        struct.pack("!HH", local[1], remote[1])
        + socket.inet_aton(local[0]).ljust(16, b"\0")
        + socket.inet_aton(remote[0]).ljust(16, b"\0")
        + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)
    )
    req = _INET_DIAG_REQ.pack(socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    with _netlink(NETLINK_SOCK_DIAG) as s:
        s.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(req), SOCK_DIAG_BY_FAMILY,
                              NLM_F_REQUEST, 1, 0) + req)  # fmt: skip
        for kind, payload in _messages(s.recv(1 << 16)):
            if kind == NLMSG_ERROR:
                err = _error(payload)
                if err:
                    return None
            elif kind == SOCK_DIAG_BY_FAMILY and len(payload) >= _INET_DIAG_MSG_SIZE:
                return int(struct.unpack_from("=I", payload, 68)[0])
    return None


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
    out: list[UnixSocket] = []
    with _netlink(NETLINK_SOCK_DIAG) as s:
        for payload in _dump(s, req, "unix sockets"):
            if len(payload) < _UNIX_DIAG_MSG.size:
                continue
            _fam, kind, state, _pad, inode, _c0, _c1 = _UNIX_DIAG_MSG.unpack_from(payload)
            attrs = _attrs(payload, _UNIX_DIAG_MSG.size)
            vfs = None
            if UNIX_DIAG_VFS in attrs and len(attrs[UNIX_DIAG_VFS]) >= 8:
                ino, dev = struct.unpack_from("=II", attrs[UNIX_DIAG_VFS])
                # The kernel's own dev_t (major << 20 | minor), not stat's.
                vfs = (os.makedev(dev >> 20, dev & 0xFFFFF), ino)
            out.append(UnixSocket(kind, state, inode, attrs.get(UNIX_DIAG_NAME), vfs))
    return out


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
