"""Acting on a tracee's socket from the supervisor: pidfd_getfd and raw
socket calls on exact sockaddr bytes (so what runs is what was decided)."""

from __future__ import annotations

import ctypes
import os
import socket

from . import _syscall
from ._syscall import check, libc

NR_PIDFD_GETFD = 438  # the same on every architecture

for _name, _args in {
    "connect": [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint],
    "bind": [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint],
    "sendto": [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_char_p,
               ctypes.c_uint],
}.items():  # fmt: skip
    _f = getattr(libc, _name)
    _f.argtypes = _args
    _f.restype = ctypes.c_ssize_t if _name == "sendto" else ctypes.c_int


def steal(pid: int, fd: int) -> int:
    """A copy of the process's fd in ours (the same open socket), CLOEXEC."""
    pidfd = os.pidfd_open(pid)
    try:
        return _syscall.syscall(NR_PIDFD_GETFD, pidfd, fd, 0, what=f"pidfd_getfd({pid}, {fd})")
    finally:
        os.close(pidfd)


def connect(fd: int, sockaddr: bytes) -> None:
    check(libc.connect(fd, sockaddr, len(sockaddr)), "connect")


def bind(fd: int, sockaddr: bytes) -> None:
    check(libc.bind(fd, sockaddr, len(sockaddr)), "bind")


def sendto(fd: int, data: bytes, flags: int, sockaddr: bytes) -> int:
    """sendto(2); an empty sockaddr means none (NULL: the connected peer)."""
    addr = sockaddr or None
    return check(libc.sendto(fd, data, len(data), flags, addr, len(sockaddr)), "sendto")


def unix_sockaddr(path: str) -> bytes:
    raw = os.fsencode(path)
    if len(raw) >= 108:
        raise OSError(36, f"unix socket path too long: {path}")
    return (1).to_bytes(2, "little") + raw + b"\0"


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_char_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("namelen", ctypes.c_uint),
        ("iov", ctypes.POINTER(_Iovec)), ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_char_p), ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int),
    ]  # fmt: skip


libc.sendmsg.argtypes = [ctypes.c_int, ctypes.POINTER(_Msghdr), ctypes.c_int]
libc.sendmsg.restype = ctypes.c_ssize_t


def sendmsg(fd: int, data: bytes, flags: int, sockaddr: bytes, control: bytes) -> int:
    """sendmsg(2) of one buffer with these exact control message bytes (an
    empty sockaddr: the connected peer)."""
    iov = _Iovec(data, len(data))
    msg = _Msghdr(
        sockaddr or None, len(sockaddr), ctypes.pointer(iov), 1, control or None, len(control), 0
    )
    return check(libc.sendmsg(fd, ctypes.byref(msg), flags), "sendmsg")


def family(fd: int) -> int:
    """The socket's address family (SO_DOMAIN)."""
    with socket.socket(fileno=os.dup(fd)) as s:
        return int(s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))


def own_address(fd: int) -> bytes:
    """The address the socket is bound to, as sockaddr bytes."""
    buf = ctypes.create_string_buffer(128)
    size = ctypes.c_uint(128)
    check(libc.getsockname(fd, buf, ctypes.byref(size)), "getsockname")
    return buf.raw[: size.value]
