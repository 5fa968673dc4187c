"""Acting on a tracee's socket from the supervisor: pidfd_getfd and raw
socket calls on exact sockaddr bytes (so what runs is what was decided)."""

from __future__ import annotations

import ctypes
import os

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
