"""Unix socket sends with ancillary data, and sendmmsg batches, carried out
by the supervisor in notify mode (issue 17, the rest of item 7).

A send answered with CONTINUE lets the kernel read the message again: its
address (a name written into a message decided without one, a unix path
flipped to a denied socket) and its fd number (another socket dup2()ed
onto it). So the supervisor sends every message itself, on its copy of the
socket (pidfd_getfd), with the address bytes it decided and a unix path
pinned by an O_PATH fd. Ancillary data on a unix socket:

* SCM_RIGHTS: the fds are the caller's numbers; the supervisor copies each
  (pidfd_getfd: the same open files) and sends its copies, so the receiver
  gets exactly what the caller's send would have given it.
* SCM_CREDENTIALS: the kernel checks them against the sender, and the
  sender would be the supervisor: it cannot send the caller's pid (that
  takes CAP_SYS_ADMIN), so the message is refused (EPERM, what the kernel
  answers credentials not the sender's own).

What a receiver with SO_PASSCRED sees as the sender of an emulated send is
the supervisor's pid (with the caller's user and group: the supervisor's
are the same). Helpers of the Decoder's sendmsg and sendmmsg handlers.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from typing import TYPE_CHECKING

from .. import policy as pol
from .._linux import files, procfs, sockets
from ._request import Request

if TYPE_CHECKING:
    from ._decoder import Decoder

_SOL_SOCKET = 1
_SCM_RIGHTS = 1
_SCM_CREDENTIALS = 2
_MSG_LEN = 56  # offset of msg_len in a struct mmsghdr


def credentials(control: bytes) -> bool:
    """The control messages carry SCM_CREDENTIALS."""
    return any(
        (level, kind) == (_SOL_SOCKET, _SCM_CREDENTIALS) for level, kind, _ in _cmsgs(control)
    )


def _cmsgs(control: bytes) -> list[tuple[int, int, tuple[int, int]]]:
    """(level, type, (start, end) of its data) of each well-formed message;
    the decoder refused malformed ones already."""
    out, at = [], 0
    while len(control) - at >= 16:
        length, level, kind = struct.unpack_from("<Qii", control, at)
        if length < 16 or at + length > len(control):
            break
        out.append((level, kind, (at + 16, at + length)))
        at += (length + 7) & ~7
    return out


def refuse_credentials(d: Decoder, name: str, pid: int, tid: int, req: Request) -> Request:
    """SCM_CREDENTIALS on a unix socket that the supervisor would send:
    refused, unless the send is denied anyway (that decision stands)."""
    if req.decision.decision not in ("allow", "audit"):
        return req
    message = "credentials (SCM_CREDENTIALS) cannot be sent on the caller's behalf"
    return d._refuse(name, pid, tid, (), message=message, cmsg="SCM_CREDENTIALS")


def _with_copies(pid: int, control: bytes, stack: contextlib.ExitStack) -> bytes:
    """``control`` with each SCM_RIGHTS fd number replaced by the
    supervisor's copy of the caller's fd (closed with ``stack``)."""
    out = bytearray(control)
    for level, kind, (start, end) in _cmsgs(control):
        if (level, kind) != (_SOL_SOCKET, _SCM_RIGHTS):
            continue
        for at in range(start, end - 3, 4):
            fd = struct.unpack_from("<i", control, at)[0]
            copy = sockets.steal(pid, fd)  # EBADF for a number the caller does not hold
            stack.callback(os.close, copy)
            struct.pack_into("<i", out, at, copy)
    return bytes(out)


def _address(req: Request | None, stack: contextlib.ExitStack) -> bytes:
    """The address bytes decided; a unix path through an O_PATH fd of the
    decided file (no symlink followed), which must still be the socket an
    "own" decision saw."""
    if req is None or req.kind != "unix":
        return req.sockaddr if req is not None else b""
    path = req.fields.get("resolved", req.fields.get("path", ""))
    if path.startswith("@"):
        return req.sockaddr
    pinned = files.openat2(path, os.O_PATH | os.O_CLOEXEC, 0, files.RESOLVE_NO_SYMLINKS)
    stack.callback(os.close, pinned)
    if req.pin is not None:
        st = os.fstat(pinned)
        if (st.st_dev, st.st_ino) != req.pin:
            raise OSError(errno.ECONNREFUSED, "swapped since it was found to be the sandbox's own")
    return sockets.unix_sockaddr(f"/proc/self/fd/{pinned}")


def _send(pid: int, sfd: int, data: bytes, flags: int, req: Request | None, control: bytes) -> int:
    with contextlib.ExitStack() as stack:
        addr = _address(req, stack)
        return sockets.sendmsg(sfd, data, flags, addr, _with_copies(pid, control, stack))


def sendmsg(req: Request, fd: int, data: bytes, flags: int, control: bytes) -> Request:
    """An allowed sendmsg on a unix socket with ancillary data, sent by the
    supervisor (``req``: the destination's decision, or a quiet allow when
    there is none)."""
    if req.decision.decision not in ("allow", "audit"):
        return req
    pid, dest = req.pid, (req if req.sockaddr else None)  # a quiet one: its raw bytes

    def run() -> int:
        try:
            sfd = sockets.steal(pid, fd)
            try:
                return _send(pid, sfd, data, flags, dest, control)
            finally:
                os.close(sfd)
        except OSError as e:
            err = e.errno or errno.EACCES
            req.fields["result"] = errno.errorcode.get(err, str(err))
            return -err

    req.action = run
    req.run_async = True  # a send may block
    return req


Message = tuple[int, "Request | None", bytes, bytes]  # (mmsghdr address, decision, data, control)


def sendmmsg(found: Request, tid: int, fd: int, flags: int, messages: list[Message]) -> Request:
    """An allowed sendmmsg, every message sent by the supervisor as
    ``sendmsg`` does, each msg_len written back; the result is the number
    sent (an error only when the first fails, as the kernel answers)."""
    pid = found.pid

    def send_all() -> int:
        sent = 0
        try:
            sfd = sockets.steal(pid, fd)
        except OSError as e:
            return -(e.errno or errno.EBADF)
        try:
            for hdr, req, data, control in messages:
                try:
                    n = _send(pid, sfd, data, flags, req, control)
                except OSError as e:
                    if not sent:
                        found.fields["result"] = errno.errorcode.get(e.errno or 0, str(e.errno))
                    return sent if sent else -(e.errno or errno.EIO)
                procfs.write_memory(tid, hdr + _MSG_LEN, struct.pack("<I", n))
                sent += 1
        finally:
            os.close(sfd)
        return sent

    found.action = send_all
    found.run_async = True
    return found


def quiet_allow(name: str, pid: int, tid: int, sockaddr: bytes = b"") -> Request:
    """A send with no address to decide (none, or of a family no rule is
    about), carried out by the supervisor all the same, to ``sockaddr`` (so
    a name written in after this is never read)."""
    allow = pol.Decision("allow", "")
    return Request("net", "send", name, pid, tid, allow, quiet=True, sockaddr=sockaddr)
