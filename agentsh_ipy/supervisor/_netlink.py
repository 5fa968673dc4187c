"""Routing netlink: changes to the network refused, with an audit event.

NETLINK_ROUTE sockets are allowed: name lookups and `ip addr` read links,
addresses and routes through them (RTM_GET*). What changes the network
(RTM_NEW*, RTM_DEL*, RTM_SET*: `ip addr add`, a route, a link) needs
CAP_NET_ADMIN, which the sandbox never holds, so the kernel refuses it
anyway; it is refused here too, with ``EPERM`` as the kernel would answer,
where the message goes through a call the filter traps (sendmsg and
sendmmsg always, sendto with an address), so the attempt shows in the audit
(rule netlink-changes). send() and write() on a connected netlink socket
are not trapped: there, and against a thread that rewrites a buffer after it
was read here (notify mode lets the kernel read it again), the kernel's
capability check is the guard.

The socket is known to be NETLINK_ROUTE by its inode in the caller's netlink
table, not by the message: SOCK_DIAG_BY_FAMILY (20, a read on a
NETLINK_SOCK_DIAG socket) has the number of RTM_NEWADDR.

Handlers' helpers, called by the Decoder's sendto, sendmsg and sendmmsg.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .. import policy as pol
from .._linux import procfs, syscalls
from ._request import Request, Unreadable

if TYPE_CHECKING:
    from ._decoder import Decoder

RULE = "netlink-changes"
_HDR = 16  # struct nlmsghdr: length, type, flags, sequence, port id
_RTM_BASE = 16  # types below are netlink's own (NOOP, ERROR, DONE, ...): no change
_GET = 2  # rtnetlink's kinds: (type - 16) & 3 is NEW 0, DEL 1, GET 2, SET 3
_KINDS = ("NEW", "DEL", "GET", "SET")
_OBJECTS = (
    "LINK", "ADDR", "ROUTE", "NEIGH", "RULE", "QDISC", "TCLASS", "TFILTER", "ACTION", "PREFIX",
    "MULTICAST", "ANYCAST", "NEIGHTBL", "NDUSEROPT", "ADDRLABEL", "DCB", "NETCONF", "MDB", "NSID",
    "STATS", "CACHEREPORT", "CHAIN", "NEXTHOP", "LINKPROP", "VLAN", "NEXTHOPBUCKET", "TUNNEL",
)  # fmt: skip
# Bytes inspected at most; the kernel takes no more than the socket's send
# buffer (2 * net.core.wmem_max without CAP_NET_ADMIN: 416 KiB by default).
_INSPECT_MAX = 1 << 20
_IOV_MAX = 1024  # UIO_MAXIOV: the kernel refuses a longer iovec array
_MMSGHDR = 64


def changes(data: bytes) -> list[int]:
    """The types of the messages in ``data`` that would change something,
    found as the kernel walks a netlink buffer (netlink_rcv_skb): a header
    whose length is at least 16 and at most what is left (else the kernel
    stops there), the next message at that length rounded up to 4."""
    out: list[int] = []
    at = 0
    while len(data) - at >= _HDR:
        length, kind = struct.unpack_from("<IH", data, at)
        if length < _HDR or length > len(data) - at:
            break
        if kind >= _RTM_BASE and (kind - _RTM_BASE) & 3 != _GET:
            out.append(kind)
        at += (length + 3) & ~3
    return out


def type_name(kind: int) -> str:
    obj, op = divmod(kind - _RTM_BASE, 4)
    if 0 <= obj < len(_OBJECTS):
        return f"RTM_{_KINDS[op]}{_OBJECTS[obj]}"
    return f"type {kind}"


def _route_socket(tid: int, fd: int) -> bool:
    return procfs.netlink_protocol(tid, fd) == syscalls.NETLINK_ROUTE


def _read(d: Decoder, tid: int, addr: int, length: int, what: str) -> bytes:
    try:
        return d.mem.read_exact(tid, addr, length) if length else b""
    except OSError as e:
        raise Unreadable(f"{what}: {e.strerror}") from None


def _named_elsewhere(d: Decoder, tid: int, addr: int, length: int) -> bool:
    """A destination that is no netlink address: the kernel refuses it on a
    netlink socket (EINVAL), and it is decided as an address otherwise."""
    if not addr or not length:
        return False
    family: int = struct.unpack("=H", _read(d, tid, addr, 2, "sockaddr"))[0]
    return family != syscalls.AF_NETLINK


def _refusal(name: str, pid: int, tid: int, kinds: list[int]) -> Request:
    names = [type_name(k) for k in dict.fromkeys(kinds)]
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    d = pol.Decision("deny", RULE, f"a change to the network ({shown}) on a routing netlink socket")
    fields = {"family": "AF_NETLINK", "protocol": "NETLINK_ROUTE", "messages": names[:16]}
    return Request("syscall_blocked", name, name, pid, tid, d, fields)


def _too_long(name: str, pid: int, tid: int, size: int) -> Request:
    d = pol.Decision("deny", RULE, f"{size} bytes on a routing netlink socket: more than inspected")
    return Request("syscall_blocked", name, name, pid, tid, d, {"family": "AF_NETLINK"})


def _iov_data(d: Decoder, tid: int, iov: int, count: int) -> tuple[bytes | None, int]:
    """(the bytes of an iovec array, or None when more than inspected; their count)."""
    if count > _IOV_MAX:
        return b"", 0  # the kernel refuses the call (EMSGSIZE)
    raw = _read(d, tid, iov, 16 * count, "iovec")
    vecs = [struct.unpack_from("<QQ", raw, i) for i in range(0, len(raw), 16)]
    size = sum(length for _base, length in vecs)
    if size > _INSPECT_MAX:
        return None, size
    return b"".join(_read(d, tid, base, length, "send buffer") for base, length in vecs), size


def _decide(name: str, pid: int, tid: int, data: bytes | None, size: int) -> Request | None:
    if data is None:
        return _too_long(name, pid, tid, size)
    kinds = changes(data)
    return _refusal(name, pid, tid, kinds) if kinds else None


def _message(
    d: Decoder, name: str, pid: int, tid: int, fd: int, hdr: int, route: bool | None = None
) -> Request | None:
    """``route``: whether ``fd`` is a NETLINK_ROUTE socket, when known."""
    msg_name, namelen, iov, iovlen = struct.unpack("<QI4xQQ", _read(d, tid, hdr, 32, "msghdr"))
    if _named_elsewhere(d, tid, msg_name, namelen):
        return None
    if not (_route_socket(tid, fd) if route is None else route):
        return None
    return _decide(name, pid, tid, *_iov_data(d, tid, iov, iovlen))


def sendmsg_refusal(
    d: Decoder, name: str, pid: int, tid: int, fd: int, msghdr: int
) -> Request | None:
    """A refusal of a sendmsg whose message changes the network."""
    return _message(d, name, pid, tid, fd, msghdr)


def sendmmsg_refusal(
    d: Decoder, name: str, pid: int, tid: int, fd: int, vec: int, count: int
) -> Request | None:
    """A refusal of a sendmmsg where any message changes the network."""
    if count == 0 or not _route_socket(tid, fd):  # one socket for every message
        return None
    for i in range(count):
        found = _message(d, name, pid, tid, fd, vec + _MMSGHDR * i, route=True)
        if found is not None:
            return found
    return None


def sendto_refusal(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request | None:
    """A refusal of a sendto (fd, buf, len, flags, addr, addrlen) that changes the network."""
    fd = a[0] & 0xFFFFFFFF
    if _named_elsewhere(d, tid, a[4], a[5] & 0xFFFFFFFF) or not _route_socket(tid, fd):
        return None
    if a[2] > _INSPECT_MAX:
        return _too_long(name, pid, tid, a[2])
    return _decide(name, pid, tid, _read(d, tid, a[1], a[2], "send buffer"), a[2])
