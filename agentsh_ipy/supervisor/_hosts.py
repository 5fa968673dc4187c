"""The host's own services: is a destination this machine, and is whatever
would receive a connection there held by the sandbox itself?

Nothing is recorded at bind time: at each decision the kernel is asked who
is bound where, and the sandbox's processes which sockets they hold. So a
port the kernel chose (bind to port 0, a UDP socket's first send, listen
without bind) counts, and a socket that is gone stops counting at once."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import stat
from collections.abc import Callable, Iterable

from .._linux import netinfo

_HOST_TYPES = (netinfo.RTN_LOCAL, netinfo.RTN_BROADCAST, netinfo.RTN_MULTICAST)
_NO_ROUTE = (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _v4(addr: _IPAddress) -> _IPAddress:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


class HostServices:
    """``members``: the pids of every process of this sandbox."""

    def __init__(self, members: Callable[[], Iterable[int]]) -> None:
        self.members = members

    @staticmethod
    def route(ip: str) -> int | None:
        """The kernel's route type to ``ip`` (netinfo.RTN_*); None when
        there is no route (the kernel could not send there either). A lookup
        that fails otherwise answers RTN_LOCAL: this host, for all we know.
        Loopback is local without asking (a netlink round trip per connect)."""
        addr = _v4(ipaddress.ip_address(ip))
        if addr.is_loopback:
            return netinfo.RTN_LOCAL
        try:
            return netinfo.route_type(str(addr))
        except OSError as e:
            if e.errno in _NO_ROUTE:
                return None
            return netinfo.RTN_LOCAL

    @staticmethod
    def is_host(route: int | None) -> bool:
        """Does a route of this type deliver on this host (an address of a
        local interface, a broadcast or a multicast route)?"""
        return route in _HOST_TYPES

    def _held(self, inodes: set[int]) -> bool:
        """Are all these sockets held by processes of the sandbox? A process
        whose fds cannot be read holds nothing here (fail closed)."""
        missing = set(inodes)
        for pid in self.members():
            try:
                missing -= netinfo.socket_inodes(pid)
            except OSError:
                continue
            if not missing:
                return True
        return not missing

    def own_inet(self, ip: str, port: int, route: int | None) -> bool:
        """Is every socket that could receive a connection or datagram to
        ``ip``:``port`` (TCP listeners, UDP sockets) the sandbox's, and is
        there one? Sockets on the wildcard address count for every address;
        for a destination that is not one local address (0.0.0.0, a
        broadcast or multicast route) every socket on the port counts."""
        dest = _v4(ipaddress.ip_address(ip))
        every = dest.is_unspecified or route != netinfo.RTN_LOCAL
        try:
            found = netinfo.inet_sockets(port)
        except OSError:
            return False
        receivers = set()
        for s in found:  # TCP listeners and UDP sockets only (netinfo asks for no others)
            local = _v4(ipaddress.ip_address(s.ip))
            if every or local.is_unspecified or local == dest:
                receivers.add(s.inode)
        return bool(receivers) and self._held(receivers)

    def own_unix(self, path: str, abstract: bool) -> tuple[int, int] | None:
        """The (st_dev, st_ino) of the socket file at ``path`` (for an
        abstract name: (0, 0)) when the socket bound there is held by the
        sandbox; None otherwise. A pathname socket is found by its file, so
        a hard link or a rename of another's socket is still another's."""
        vfs: tuple[int, int] | None = None
        if abstract:
            name = b"\0" + os.fsencode(path.removeprefix("@"))
        else:
            try:
                st = os.stat(path)
            except OSError:
                return None
            if not stat.S_ISSOCK(st.st_mode):
                return None
            vfs = (st.st_dev, st.st_ino)
        try:
            found = netinfo.unix_sockets()
        except OSError:
            return None
        receivers = {
            s.inode
            for s in found
            if (s.state == netinfo.TCP_LISTEN or s.type == socket.SOCK_DGRAM)
            and ((s.vfs == vfs) if vfs is not None else (s.name or b"").rstrip(b"\0") == name)
        }
        if not receivers or not self._held(receivers):
            return None
        return vfs or (0, 0)
