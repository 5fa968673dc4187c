"""Metadata changes as file decisions: extended attributes (POSIX ACLs among
them) and inode flags, and the fd forms of chmod, chown and times.

Each is a file operation under the file rules: an ACL is a permission
change (``chmod``), a user xattr is content (``write``), inode flags are a
permission change (``chmod``: immutable, append-only). The namespaces no rule
can sensibly grant are refused (EOPNOTSUPP, as on a file system without
them, so ``cp -a``, ``tar`` and ``rsync -X`` carry on); see XATTR_REFUSED.

The supervisor makes every allowed change itself, so the kernel never reads
the tracee's memory or fd table again after the decision: the name and value
are read once; a path form acts on the decided real path pinned with openat2
(``Decoder._on_path``); an fd form acts on the supervisor's copy of the fd
(``_onfd``), whose path is what was decided.

Handlers are plain functions of the Decoder (bound in its class body)."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import policy as pol
from .._linux import files, subcommands
from . import _onfd, _pinned
from ._request import Request, Unreadable

if TYPE_CHECKING:
    from ._decoder import Decoder

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
XATTR_ARGS_SIZE = 16  # struct xattr_args (setxattrat): value pointer, size, flags
FILE_ATTR_SIZE = 24  # struct file_attr (file_setattr), version 0
FSXATTR_SIZE = 28  # struct fsxattr (FS_IOC_FSSETXATTR)
_PAGE = 4096  # the largest struct the kernel takes from setxattrat / file_setattr

# The xattrs whose change is a change of who may read or write the file.
XATTR_ACLS = ("system.posix_acl_access", "system.posix_acl_default")
# Refused namespaces, and why (docs/security.md says the same).
XATTR_REFUSED = {
    "security.": "security.* holds file capabilities (security.capability: privileges any "
    "later exec of the file gains, outside the sandbox too) and LSM labels (SELinux, "
    "Smack, IMA/EVM): a planted privilege, not a file change",
    "trusted.": "trusted.* is the file system's and root daemons' own state (overlayfs, glusterfs)",
    "system.": "system.* other than the POSIX ACLs is file-system specific (NFSv4 ACLs, "
    "...): no operation says what it grants",
}
# The ioctl requests that set inode flags, by number (the catalog's class).
INODE_FLAG_REQUESTS = {v: k for k, v in subcommands.IOCTL_INODE.items()}
FS_IOC_FSSETXATTR = subcommands.IOCTL_INODE["FS_IOC_FSSETXATTR"]


def xattr_op(xname: str) -> tuple[str | None, str]:
    """The file operation setting or removing ``xname`` is decided as, or
    None and why it is refused."""
    if xname in XATTR_ACLS:
        return "chmod", ""
    if xname.startswith("user."):
        return "write", ""
    for prefix, why in XATTR_REFUSED.items():
        if xname.startswith(prefix):
            return None, why
    return None, "not an xattr namespace"


class _Invalid(Exception):
    """Arguments the kernel refuses before doing anything: its errno."""

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.err = err


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _read(d: Decoder, tid: int, addr: int, size: int, what: str) -> bytes:
    try:
        return d.mem.read_exact(tid, addr, size) if size else b""
    except OSError as e:
        raise Unreadable(f"{what} at {addr:#x}: {e.strerror}") from None


def _struct(d: Decoder, tid: int, addr: int, usize: int, size: int, what: str) -> bytes:
    """An extensible struct as copy_struct_from_user takes it: at least
    ``size`` bytes, at most a page, any bytes past ``size`` zero."""
    if usize < size:
        raise _Invalid(errno.EINVAL)
    if usize > _PAGE:
        raise _Invalid(errno.E2BIG)
    raw = _read(d, tid, addr, usize, what)
    if any(raw[size:]):
        raise _Invalid(errno.E2BIG)
    return raw[:size]


def _xattr_name(d: Decoder, tid: int, addr: int) -> str:
    try:
        raw = d.mem.read_cstring(tid, addr, XATTR_NAME_MAX + 1)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise _Invalid(errno.ERANGE) from None
        raise Unreadable(f"xattr name at {addr:#x}: {e.strerror}") from None
    if not raw:
        raise _Invalid(errno.ERANGE)
    return os.fsdecode(raw)


def _kernel_says(name: str, pid: int, tid: int, err: int) -> Request:
    """The kernel's own answer to malformed arguments: nothing happens, so
    nothing to audit."""
    d = pol.Decision("deny", "", "invalid arguments")
    return Request("file", "metadata", name, pid, tid, d, err=err, quiet=True)


def _where(
    d: Decoder, name: str, pid: int, tid: int, dirfd: int, path_addr: int, at_flags: int
) -> tuple[int | None, str, bool]:
    """(an fd, or None and a path; whether the last symlink is followed) of
    a *at call: an empty path with AT_EMPTY_PATH is the fd itself."""
    if at_flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise _Invalid(errno.EINVAL)
    follow = not at_flags & AT_SYMLINK_NOFOLLOW
    if at_flags & AT_EMPTY_PATH and d._str(tid, path_addr) == "":
        return _s32(dirfd), "", follow
    return None, d._path(pid, tid, dirfd, path_addr), follow


def _result(req: Request, e: OSError) -> int:
    err = e.errno or errno.EACCES
    req.fields["result"] = errno.errorcode.get(err, str(err))
    return -err


def on_fd(
    d: Decoder,
    name: str,
    pid: int,
    tid: int,
    fd: int,
    op: str,
    act: Callable[[_onfd.FdCopy], None],
    **extra: Any,
) -> Request:
    """Decide ``op`` on the file the supervisor's copy of ``fd`` names and,
    allowed, make the change (``act``) on that copy when answering."""
    fd = _s32(fd)
    try:
        copy = _onfd.copy(pid, tid, fd)
    except OSError as e:
        raise Unreadable(f"fd {fd} of {tid}: {e.strerror}") from None
    if not copy.path.startswith("/"):
        copy.close()
        raise Unreadable(f"fd {fd} of {tid} is not a directory or file ({copy.path})")
    req = d._file(name, pid, tid, [op], copy.path, real=copy.path, fd=fd, **extra)
    if req.decision.decision not in ("allow", "audit", "approve"):
        copy.close()
        return req

    def run() -> int:
        # Also after an approval, whose answer sets the final decision.
        try:
            if req.decision.decision not in ("allow", "audit"):
                return -req.errno
            refused = _pinned.not_as_caller(req)
            if refused is not None:
                return refused
            act(copy)
        except OSError as e:
            return _result(req, e)
        finally:
            copy.close()
        return 0

    req.action = run
    return req


def _decide(
    d: Decoder,
    name: str,
    pid: int,
    tid: int,
    a: tuple[int, ...],
    where: tuple[int | None, str, bool],
    op: str | None,
    why: str,
    act: Callable[[int | str], None],
    **fields: Any,
) -> Request:
    """``op`` on the fd or path of ``where``; None: refused (``why``)."""
    fd, path, follow = where
    if op is None:
        with_path = {"fd": fd} if fd is not None else {"path": path}
        return d._refuse(name, pid, tid, a, errno.EOPNOTSUPP, why, **with_path, **fields)
    if fd is not None:
        return on_fd(d, name, pid, tid, fd, op, lambda c: act(c.target), **fields)
    req = d._file(name, pid, tid, [op], path, follow, **fields)
    return d._on_path(req, follow, act)


# -- xattrs -----------------------------------------------------------------
def set_xattr(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
    """setxattr, lsetxattr, fsetxattr, setxattrat."""
    try:
        if name == "setxattrat":
            where = _where(d, name, pid, tid, a[0], a[1], a[2])
            name_addr = a[3]
            raw = _struct(d, tid, a[4], a[5], XATTR_ARGS_SIZE, "struct xattr_args")
            value_addr, size, flags = struct.unpack("<QII", raw)
        else:
            if name == "fsetxattr":
                where = (_s32(a[0]), "", True)
            else:
                where = (None, d._path(pid, tid, AT_FDCWD, a[0]), name == "setxattr")
            name_addr, value_addr, size, flags = a[1], a[2], a[3], _s32(a[4])
        xname = _xattr_name(d, tid, name_addr)
        if size > XATTR_SIZE_MAX:
            raise _Invalid(errno.E2BIG)
        value = _read(d, tid, value_addr, size, "xattr value")
    except _Invalid as e:
        return _kernel_says(name, pid, tid, e.err)
    op, why = xattr_op(xname)

    def act(target: int | str) -> None:
        os.setxattr(target, xname, value, flags)

    return _decide(d, name, pid, tid, a, where, op, why, act, xattr=xname, size=size)


def remove_xattr(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
    """removexattr, lremovexattr, fremovexattr, removexattrat."""
    try:
        if name == "removexattrat":
            where = _where(d, name, pid, tid, a[0], a[1], a[2])
            name_addr = a[3]
        else:
            if name == "fremovexattr":
                where = (_s32(a[0]), "", True)
            else:
                where = (None, d._path(pid, tid, AT_FDCWD, a[0]), name == "removexattr")
            name_addr = a[1]
        xname = _xattr_name(d, tid, name_addr)
    except _Invalid as e:
        return _kernel_says(name, pid, tid, e.err)
    op, why = xattr_op(xname)

    def act(target: int | str) -> None:
        os.removexattr(target, xname)

    return _decide(d, name, pid, tid, a, where, op, why, act, xattr=xname)


# -- inode flags ------------------------------------------------------------
def inode_flags_ioctl(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
    """ioctl FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR: a chmod of
    the fd's file, the value read once and the ioctl made on our copy."""
    request = a[1] & 0xFFFFFFFF
    if request == FS_IOC_FSSETXATTR:
        raw = _read(d, tid, a[2], FSXATTR_SIZE, "struct fsxattr")
        xflags, extsize, _nextents, projid, cowextsize = struct.unpack_from("<IIIII", raw)
        fields: dict[str, Any] = {
            "xflags": hex(xflags), "projid": projid, "extsize": extsize,
            "cowextsize": cowextsize,
        }  # fmt: skip
    else:
        raw = _read(d, tid, a[2], 4, "inode flags")  # the kernel reads an int, either size
        fields = {"flags": hex(struct.unpack("<I", raw)[0])}

    def act(copy: _onfd.FdCopy) -> None:
        fd = copy.reopened()
        try:
            fcntl.ioctl(fd, request, raw)
        finally:
            if fd != copy.fd:
                os.close(fd)

    return on_fd(
        d, name, pid, tid, a[0], "chmod", act, request=INODE_FLAG_REQUESTS[request], **fields
    )


def file_setattr(d: Decoder, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
    """file_setattr(dirfd, path, struct file_attr *, size, at_flags): inode
    flags and project id by path, a chmod."""
    try:
        where = _where(d, name, pid, tid, a[0], a[1], a[4])
        raw = _struct(d, tid, a[2], a[3], FILE_ATTR_SIZE, "struct file_attr")
    except _Invalid as e:
        return _kernel_says(name, pid, tid, e.err)
    xflags, extsize, _nextents, projid, _cowextsize = struct.unpack("<QIIII", raw)
    fields = {"xflags": hex(xflags), "projid": projid, "extsize": extsize}

    def act(target: int | str) -> None:
        if isinstance(target, int):
            files.file_setattr(target, "", raw, AT_EMPTY_PATH)
        else:
            files.file_setattr(AT_FDCWD, target, raw, 0)

    return _decide(d, name, pid, tid, a, where, "chmod", "", act, **fields)
