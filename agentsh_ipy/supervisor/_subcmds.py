"""Sub-commands the filter traps: ioctl requests, fcntl commands, prctl
options and setsockopt options no allowed class names, the signal owner of
a file (``F_SETOWN``, ``FIOSETOWN``), new namespaces, and the control
messages of sendmsg.

The catalog (``_linux/syscalls.py``) sorts sub-commands into classes; the
filter allows the harmless ones, so only decided, refused and unknown ones
reach these handlers. A refusal names the sub-command in the audit
(``"request": "TIOCSTI"``, ``"command": "F_SETLEASE"``, ...).

Handlers are plain functions of the Decoder (bound in its class body)."""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import struct
from typing import TYPE_CHECKING, Any

from .. import policy as pol
from .._linux import procfs, sockets, syscalls
from .._linux import subcommands as sc
from ._request import Request, Unreadable

if TYPE_CHECKING:
    from ._decoder import Decoder

_CONTROL_MAX = 1 << 16  # control bytes we read at most (the kernel's optmem_max is smaller)
_LEVEL_NAMES = {v: k for k, v in sc.LEVELS.items()}
_CAP_SYS_ADMIN = 21


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _allow(name: str, pid: int, tid: int) -> Request:
    return Request("syscall_blocked", name, name, pid, tid, pol.Decision("allow", ""), quiet=True)


def sub_command(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
    """A sub-command the filter did not allow: refused, named in the audit,
    with its class's errno, or the call's when no class names it."""
    entry = syscalls.CATALOG[name]
    sub, label = entry.sub(a)
    fields: dict[str, Any] = {entry.sub_key: label}
    if name == "setsockopt":
        level = _s32(a[1])
        fields = {"level": _LEVEL_NAMES.get(level, level), "option": label}
        if sub is None:
            fields["option"] = _s32(a[2])
    if sub is None:
        what = f"{entry.sub_key} {fields[entry.sub_key]} is not on the allowlist"
        return d._refuse(name, pid, tid, a, entry.errno, message=what, **fields)
    if sub.kind is syscalls.Kind.HARMLESS:  # the filter allows it; not trapped by ours
        return _allow(name, pid, tid)
    return d._refuse(name, pid, tid, a, sub.errno, message=f"{label}: {sub.what}", **fields)


# -- who gets SIGIO: F_SETOWN, FIOSETOWN, SIOCSPGRP ------------------------------
def _owner_outside(d: Decoder, pid: int, target: int) -> str:
    """Why ``target`` (a pid, or -pgid) may not own a file of ``pid``: a
    process outside, or a group with a member outside; "" when it may."""
    if target == 0:
        return ""
    if target > 0:
        return "" if d._inside(d._tgid(target), pid) else "a process outside the sandbox"
    members = procfs.group_members(-target)
    if any(p != pid and not d.tree.inside(p) for p in members):
        return "a process group with members outside the sandbox"
    return ""


def fcntl_cmd(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
    """F_SETOWN (its target is in a register: the kernel uses what was
    decided, with the caller's credentials); everything else trapped is
    refused by the catalog's classes."""
    if _s32(a[1]) != sc.F_SETOWN:
        return sub_command(d, name, pid, tid, a)
    target = _s32(a[2])
    why = _owner_outside(d, pid, target)
    if not why:
        return _allow(name, pid, tid)
    return d._refuse(name, pid, tid, a, message=why, command="F_SETOWN", target=target)


def ioctl(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
    """FIOSETOWN and SIOCSPGRP: their pid is in memory, so the supervisor
    reads it once, decides, and sets it itself with F_SETOWN on its copy of
    the socket (the same open file, so the same owner; a socket's
    FIOSETOWN is exactly F_SETOWN). The owner then carries the supervisor's
    credentials, which pass the kernel's permission check for any target,
    but the target is a struct pid of the sandbox fixed at this decision
    (a later process reusing the number is not it). Others: refused."""
    request = a[1] & 0xFFFFFFFF
    if request == sc.TIOCSCTTY:
        if not _cap_sys_admin(tid):
            return _allow(name, pid, tid)
        message = "TIOCSCTTY 1 with CAP_SYS_ADMIN: it would steal another session's terminal"
        return d._refuse(name, pid, tid, a, message=message, request="TIOCSCTTY")
    if request == sc.TIOCGPTPEER:
        # The peer of a master the caller opened is its own pty; a racing
        # thread can only put another fd it holds under that number.
        if _fd_target(tid, _s32(a[0])) in ("/dev/ptmx", "/dev/pts/ptmx"):
            return _allow(name, pid, tid)
        message = "TIOCGPTPEER on an fd that is not a /dev/ptmx master"
        return d._refuse(name, pid, tid, a, message=message, request="TIOCGPTPEER")
    label = next((k for k, v in sc.IOCTL_OWNER.items() if v == request), None)
    if label is None:
        return sub_command(d, name, pid, tid, a)
    fd = _s32(a[0])
    try:
        target = _s32(struct.unpack("<i", d.mem.read_exact(tid, a[2], 4))[0])
        kind = procfs.fd_path(tid, fd)
    except OSError as e:
        raise Unreadable(f"{label} of fd {fd}: {e.strerror}") from None
    if not kind.startswith("socket:"):
        return d._refuse(name, pid, tid, a, errno.ENOTTY, message="not a socket", request=label)
    why = _owner_outside(d, pid, target)
    if why:
        return d._refuse(name, pid, tid, a, message=why, request=label, target=target)
    req = _allow(name, pid, tid)

    def run() -> int:
        try:
            sfd = sockets.steal(pid, fd)
            try:
                fcntl.fcntl(sfd, fcntl.F_SETOWN, target)
            finally:
                os.close(sfd)
        except OSError as e:
            return -(e.errno or errno.EBADF)
        return 0

    req.action = run
    return req


def _fd_target(tid: int, fd: int) -> str:
    try:
        return procfs.fd_path(tid, fd)
    except OSError as e:
        raise Unreadable(f"fd {fd} of {tid}: {e.strerror}") from None


def _cap_sys_admin(tid: int) -> bool:
    """The thread has CAP_SYS_ADMIN in effect (a racing thread cannot raise
    its capabilities; user namespaces are refused)."""
    try:
        with open(f"/proc/{tid}/status", encoding="ascii") as f:
            eff = next(line for line in f if line.startswith("CapEff:"))
    except (OSError, StopIteration) as e:
        raise Unreadable(f"capabilities of {tid}: {e}") from None
    return bool(int(eff.split()[1], 16) & (1 << _CAP_SYS_ADMIN))


# -- namespaces -------------------------------------------------------------------
def namespaces(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
    """unshare or clone with CLONE_NEW* flags: refused, root too; a new
    namespace changes what the paths, addresses and host names the
    decisions are made on mean."""
    names = sc.namespaces(a[0] if name == "unshare" else a[0] & sc.CLONE_NEW_CLONE)
    return d._refuse(
        name, pid, tid, a, message="a new namespace: " + ", ".join(names), namespaces=names
    )


# -- control messages of sendmsg ------------------------------------------------------
def _pktinfo_source(level: int, data: bytes) -> tuple[int, bytes]:
    """(interface index, source address bytes) of an IP(V6)_PKTINFO."""
    if level == sc.SOL_IP:
        if len(data) < 12:
            raise ValueError("short in_pktinfo")
        return struct.unpack_from("<i", data)[0], data[4:8]
    if len(data) < 20:
        raise ValueError("short in6_pktinfo")
    return struct.unpack_from("<i", data, 16)[0], data[:16]


def _own_source(pid: int, fd: int, source: bytes) -> bool:
    """``source`` is the address the socket is bound to."""
    try:
        sfd = sockets.steal(pid, fd)
    except OSError:
        return False
    try:
        own = sockets.own_address(sfd)
    except OSError:
        return False
    finally:
        os.close(sfd)
    family = struct.unpack_from("=H", own)[0] if len(own) >= 2 else 0
    if family == socket.AF_INET:
        return own[4:8] == source
    return family == socket.AF_INET6 and own[8:24] == source


def control_refusal(
    d: Decoder, name: str, pid: int, tid: int, fd: int, control: bytes
) -> Request | None:
    """A refusal of the control messages ``control`` carries, or None when
    each is allowed: the ones that give a packet another first hop (IP
    source routes, IPv6 routing headers, a next hop), a firewall mark, or
    an interface or a source address not the socket's own (IP_PKTINFO)
    would make the address decided not the one the packet goes to."""
    at = 0
    while at < len(control):
        if len(control) - at < 16:
            why, what = "a truncated control message", ""
            break
        length, level, kind = struct.unpack_from("<Qii", control, at)
        if length < 16 or at + length > len(control):
            why, what = "a malformed control message", f"{level}/{kind}"
            break
        data = control[at + 16 : at + length]
        key = (level, kind)
        what = (
            sc.CMSG_OK.get(key) or sc.CMSG_PKTINFO.get(key) or sc.CMSG_REFUSED.get(key)
            or f"{level}/{kind}"
        )  # fmt: skip
        why = ""
        if key in sc.CMSG_REFUSED:
            why = "another first hop or a firewall mark"
        elif key in sc.CMSG_PKTINFO:
            try:
                ifindex, source = _pktinfo_source(level, data)
            except ValueError as e:
                why = str(e)
            else:
                if ifindex != 0:
                    why = f"an outgoing interface ({ifindex})"
                elif any(source) and not _own_source(pid, fd, source):
                    why = f"a source address not the socket's own ({_ip(source)})"
        elif key not in sc.CMSG_OK:
            why = "a control message not on the allowlist"
        if why:
            break
        at += (length + 7) & ~7
    else:
        return None
    return d._refuse(name, pid, tid, (), errno.EINVAL, message=why, cmsg=what)


def _ip(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def read_control(d: Decoder, tid: int, msghdr: int) -> bytes:
    """A struct msghdr's control bytes, read once."""
    try:
        control, length = struct.unpack("<QQ", d.mem.read_exact(tid, msghdr + 32, 16))
        if length > _CONTROL_MAX:
            raise Unreadable(f"msghdr: {length} bytes of control messages")
        return d.mem.read_exact(tid, control, length) if length else b""
    except OSError as e:
        raise Unreadable(f"msghdr control: {e.strerror}") from None


def emulable(pid: int, fd: int) -> bool:
    """The kernel ignores fds and credentials (SCM_*) on anything but a unix
    socket, so on any other the supervisor can send the message itself."""
    try:
        sfd = sockets.steal(pid, fd)
    except OSError:
        return False
    try:
        return sockets.family(sfd) != socket.AF_UNIX
    except OSError:
        return False
    finally:
        os.close(sfd)
