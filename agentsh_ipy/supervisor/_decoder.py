"""Decoding trapped syscalls: read the arguments from the tracee's memory,
resolve paths as the kernel would, and ask the policy. Side effects a
decision implies (an emulated chmod, connect, move to trash) are attached to
the request as an action, run when the kernel is answered."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import stat
import struct
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .. import policy as pol
from .._linux import files, procfs, sockets, subcommands, syscalls
from .._linux.arch import Arch
from . import _attr_write, _fast, _metadata, _netlink, _onfd, _pinned, _sends, _subcmds, _terminals
from ._exec_identity import for_policy as exec_identity_for
from ._hosts import HostServices
from ._proxy import Proxy
from ._redirect import Redirector
from ._request import (
    BLOCKED_RULE,
    CONTINUE,
    LIMIT_RULE,
    PROC_RULE,
    RANK,
    Request,
    Unreadable,
    worst,
)  # fmt: skip
from ._trash import Trash

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
O_ACCMODE = 0o3
O_CREAT = 0o100
O_TRUNC = 0o1000
O_NOFOLLOW = 0o400000
O_TMPFILE = 0o20000000

_MMSGHDR = 64  # sizeof(struct mmsghdr): a msghdr, the msg_len it sets, padding
_SEND_MAX = 1 << 20  # bytes an emulated send carries at most (a partial write past it)
# The flags open(2) acts on (the kernel's VALIDOPEN_FLAGS).
OPEN_FLAGS = (
    os.O_ACCMODE | os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_TRUNC | os.O_APPEND
    | os.O_NONBLOCK | os.O_DSYNC | 0o20000 | os.O_DIRECT | os.O_LARGEFILE | os.O_DIRECTORY
    | os.O_NOFOLLOW | os.O_NOATIME | os.O_CLOEXEC | os.O_SYNC | os.O_PATH | O_TMPFILE
)  # fmt: skip
# Names for the audit of a refused socket(): families (linux/socket.h),
# types, netlink protocols (linux/netlink.h).
_FAMILIES = (  # by number, from 0
    "AF_UNSPEC", "AF_UNIX", "AF_INET", "AF_AX25", "AF_IPX", "AF_APPLETALK", "AF_NETROM",
    "AF_BRIDGE", "AF_ATMPVC", "AF_X25", "AF_INET6", "AF_ROSE", "AF_DECnet", "AF_NETBEUI",
    "AF_SECURITY", "AF_KEY", "AF_NETLINK", "AF_PACKET", "AF_ASH", "AF_ECONET", "AF_ATMSVC",
    "AF_RDS", "AF_SNA", "AF_IRDA", "AF_PPPOX", "AF_WANPIPE", "AF_LLC", "AF_IB", "AF_MPLS",
    "AF_CAN", "AF_TIPC", "AF_BLUETOOTH", "AF_IUCV", "AF_RXRPC", "AF_ISDN", "AF_PHONET",
    "AF_IEEE802154", "AF_CAIF", "AF_ALG", "AF_NFC", "AF_VSOCK", "AF_KCM", "AF_QIPCRTR", "AF_SMC",
    "AF_XDP", "AF_MCTP",
)  # fmt: skip
_SOCK_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM",
               5: "SOCK_SEQPACKET", 6: "SOCK_DCCP", 10: "SOCK_PACKET"}  # fmt: skip
_NETLINK = {0: "ROUTE", 2: "USERSOCK", 3: "FIREWALL", 4: "SOCK_DIAG", 5: "NFLOG", 6: "XFRM",
            7: "SELINUX", 8: "ISCSI", 9: "AUDIT", 10: "FIB_LOOKUP", 11: "CONNECTOR",
            12: "NETFILTER", 13: "IP6_FW", 14: "DNRTMSG", 15: "KOBJECT_UEVENT", 16: "GENERIC",
            18: "SCSITRANSPORT", 19: "ECRYPTFS", 20: "RDMA", 21: "CRYPTO", 22: "SMC"}  # fmt: skip


def _socket_names(domain: int, kind: int, protocol: int) -> dict[str, Any]:
    """The family, type and protocol of a socket() call, by name where known."""
    family = _FAMILIES[domain] if 0 <= domain < len(_FAMILIES) else f"family {domain}"
    out: dict[str, Any] = {
        "family": family,
        "sock_type": _SOCK_TYPES.get(kind & syscalls.SOCK_TYPE_MASK, f"type {kind & 0xF}"),
        "protocol": protocol,
    }
    if domain == syscalls.AF_NETLINK:
        out["protocol"] = "NETLINK_" + _NETLINK.get(protocol, str(protocol))
    return out


# What another process exposes to the sandbox under /proc/<pid>/.
_PROC_PUBLIC = frozenset(
    {"", "stat", "status", "cmdline", "comm", "statm", "cgroup", "sched", "schedstat", "wchan",
     "oom_score", "loginuid", "sessionid", "limits", "task"}
)  # fmt: skip


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _id(v: int) -> int:
    """A uid_t/gid_t argument: (uid_t)-1 means "leave unchanged"."""
    v &= 0xFFFFFFFF
    return -1 if v == 0xFFFFFFFF else v


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _resolve(path: str, pid: int, tid: int, follow: bool, root: str = "/") -> str:
    """Symlinks resolved as the tracee sees them; a loop (ELOOP) leaves the
    path as given, and the kernel will refuse the call anyway."""
    try:
        return procfs.resolve(path, pid, tid, follow_last=follow, root=root)
    except OSError:
        return path


class Tree(Protocol):
    """What the decoder needs to know of the sandboxed process tree."""

    def tgid_ppid(self, tid: int) -> tuple[int, int]: ...
    def inside(self, pid: int) -> bool: ...
    def reserve_process(self, limit: int | None) -> bool: ...
    def members(self) -> list[int]: ...


class Decoder:
    """Reads a trapped call's arguments and asks the policy."""

    def __init__(
        self,
        policy: pol.Policy,
        arch: Arch,
        tree: Tree,
        trash: Trash | None = None,
        redirector: Redirector | None = None,
        sandbox: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        """``sandbox``: the pids of every process of the sandbox, when it is
        more than this tree (the notebook daemon's launches are one sandbox);
        a socket one of them holds is the sandbox's own."""
        self.policy = policy
        self.files = _fast.FileDecider(policy)  # the file rules, in C when it loads
        self.trash = trash
        self.redirector = redirector
        self.emulate_net = False  # notify mode turns it on; ptrace mode holds threads instead
        self.proxy: Proxy | None = None  # the session's proxy, when rules name domains
        self.mem = procfs.MemoryReader()
        self.tree = tree
        self.tgid_ppid = tree.tgid_ppid
        self.hosts = HostServices(sandbox or tree.members)
        self.exec_identity = exec_identity_for(policy)
        # The dispatch comes from the syscall catalog: a decided call has its
        # handler (a missing one is a bug, found here at once); any other
        # call that reaches us is refused with the catalog's errno, as is a
        # number the catalog does not know (see decode).
        self.handlers: dict[int, Callable[[str, int, int, tuple[int, ...]], Request | None]] = {}
        for name, entry in syscalls.CATALOG.items():
            nr = arch.nr(name)
            if nr is None or nr in self.handlers:
                continue
            if entry.kind is syscalls.Kind.DECIDED:
                h: Callable[..., Request | None] = getattr(self, "_h_" + entry.name)
            else:
                h = self._refuser(entry.errno)
            self.handlers[nr] = self._bind(name, h)

    @staticmethod
    def _bind(name: str, h: Callable[..., Request | None]) -> Callable[..., Request | None]:
        return lambda _n, pid, tid, args: h(name, pid, tid, args)

    def decode(self, nr: int, tid: int, args: tuple[int, ...], name: str) -> Request | None:
        """None: not ours to decide (e.g. a sendmsg without a destination).
        A number with no handler (newer than the catalog) is refused."""
        pid, _ppid = self.tgid_ppid(tid)
        handler = self.handlers.get(nr)
        if handler is None:
            return self._refuse(name, pid, tid, args, syscalls.UNKNOWN_ERRNO)
        return handler(name, pid, tid, args)

    # -- argument readers --------------------------------------------------
    def _str(self, tid: int, addr: int) -> str:
        try:
            return os.fsdecode(self.mem.read_cstring(tid, addr))
        except OSError as e:
            raise Unreadable(f"path argument at {addr:#x}: {e.strerror}") from None

    def _path(self, pid: int, tid: int, dirfd: int, addr: int, flags: int = 0) -> str:
        raw = self._str(tid, addr)
        dirfd = _s32(dirfd)
        if raw == "" and flags & AT_EMPTY_PATH:
            return self._fd(tid, dirfd)
        if raw.startswith("/"):
            base = ""
        elif dirfd == AT_FDCWD:
            base = self._cwd(tid)
        else:
            base = self._fd(tid, dirfd)
        # Not normalized: "link/.." means the link's parent to the kernel,
        # so ".." is left for resolve(), which follows links first.
        return os.path.join(base, raw) if raw else base

    def _cwd(self, tid: int) -> str:
        try:
            return procfs.cwd(tid)
        except OSError as e:
            raise Unreadable(f"cwd of {tid}: {e.strerror}") from None

    def _fd(self, tid: int, fd: int) -> str:
        try:
            target = procfs.fd_path(tid, fd)
        except OSError as e:
            raise Unreadable(f"fd {fd} of {tid}: {e.strerror}") from None
        if not target.startswith("/"):
            raise Unreadable(f"fd {fd} of {tid} is not a directory or file ({target})")
        return target

    # -- files --------------------------------------------------------------
    def _file(
        self,
        name: str,
        pid: int,
        tid: int,
        ops: list[str],
        path: str,
        follow: bool = True,
        real: str | None = None,
        **extra: Any,
    ) -> Request:
        if real is None:
            real = _resolve(path, pid, tid, follow)
        # Decide on what the kernel will reach (real); the literal path too
        # when it reads the same way lexically (no ".." to misread).
        paths = [real] if ".." in path.split("/") else list(dict.fromkeys([path, real]))
        if real != path:
            extra["resolved"] = real
        outsider = next((p for p in paths if self._proc_outside(p)), None)
        if outsider is not None:
            decision = pol.Decision("deny", PROC_RULE, "another process's /proc entry")
        else:
            decision = worst([self.files.check_file(op, p) for op in ops for p in paths])
            # another terminal's /dev/pts/N, whatever the policy allowed
            decision = _terminals.check(
                self.policy, self.hosts.members, pid, tid, ops, paths, decision
            )
        req = Request("file", ops[0], name, pid, tid, decision, {"path": path, **extra})
        if decision.decision == "soft_delete":
            self._soft_delete(req, real)
        return req

    def _soft_delete(self, req: Request, real: str) -> None:
        """The delete becomes a move into the trash, done when answering."""
        trash = self.trash
        if trash is None:
            req.decision = pol.Decision("deny", req.decision.rule, "no trash folder (no workspace)")
            return

        def move() -> int:
            result, entry = trash.put(real, pid=req.pid, syscall=req.syscall)
            req.fields["trash"] = entry
            if result < 0:
                req.fields["result"] = errno.errorcode.get(-result, str(-result))
            return result

        req.action = move

    def _proc_outside(self, path: str) -> bool:
        """/proc/<pid>/<entry> of a process outside the sandbox (the
        supervisor included): only what ps and top read is visible."""
        parts = path.split("/")
        if len(parts) < 4 or parts[1] != "proc" or not parts[2].isdigit():
            return False
        if self.tree.inside(int(parts[2])):
            return False
        entry = parts[3]
        if entry == "task" and len(parts) >= 6:
            entry = parts[5]
        return entry not in _PROC_PUBLIC

    def _open(
        self, name: str, pid: int, tid: int, path: str, flags: int, mode: int = 0,
        real: str | None = None,
    ) -> Request:  # fmt: skip
        follow = not flags & O_NOFOLLOW
        if real is None:
            real = _resolve(path, pid, tid, follow)
        ops: list[str] = []
        if flags & O_TMPFILE == O_TMPFILE or (flags & O_CREAT and not os.path.lexists(real)):
            ops.append("create")
        if flags & O_ACCMODE or flags & O_TRUNC:
            ops.append("write")
        if not ops:
            ops.append("read")
        req = self._file(name, pid, tid, ops, path, follow, real, flags=flags)
        # Emulate (open here, inject the fd) so the kernel never re-reads a
        # path buffer that a racing thread may have changed since we decided.
        # openat2 too: its path was resolved with its RESOLVE semantics and
        # the open starts where the caller's did (_pinned.open_decided).
        # /proc, /dev and /sys where the supervisor's open means the same
        # (_pinned.emulable_open). O_TMPFILE too: its directory's path is
        # read again by a continued call. O_PATH: NOTIF_ADDFD cannot
        # pass such an fd (EBADF); it reads and writes nothing, and what is
        # done through it (an open of /proc/self/fd/N, *at calls, fchdir,
        # execveat) is decided on the fd's real path.
        if (
            name in ("open", "openat", "creat", "openat2")
            and not flags & os.O_PATH
            and _pinned.emulable_open(real, flags, tid)
        ):
            req.open_spec = (real, flags, mode & 0o7777)
            self._open_via_copy(req, pid, tid, ops, real)
        elif self.emulate_net and flags & O_ACCMODE and _pinned.is_proc_attr(real):
            _attr_write.unless_alone(req, pid, tid, self.tree.members())  # it continues
        return req

    def _open_via_copy(self, req: Request, pid: int, tid: int, ops: list[str], real: str) -> None:
        """A path still ending in an fd's /proc magic link (its file has no
        name: a pipe, a socket, a deleted file) is reopened through the
        supervisor's own copy of that fd, so a sibling's dup2() onto the
        number after the decision changes nothing; what the copy names now
        is decided too."""
        ref = _pinned.proc_fd_ref(real)
        if ref is None or not self.tree.inside(ref[0]):
            return
        try:
            via = _onfd.copy(*ref)
        except OSError as e:
            req.decision = pol.Decision("deny", req.decision.rule, f"{real}: {e.strerror}")
            req.open_spec = None
            return
        if via.path.startswith("/") and via.path != real:
            other = self._file(req.syscall, pid, tid, ops, via.path)
            req.decision = worst([req.decision, other.decision])
        req.open_via = via

    def _h_open(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._open(name, pid, tid, self._path(pid, tid, AT_FDCWD, a[0]), a[1], a[2])

    def _h_openat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._open(name, pid, tid, self._path(pid, tid, a[0], a[1]), a[2], a[3])

    def _h_openat2(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        try:
            flags, mode, resolve = struct.unpack("<QQQ", self.mem.read_exact(tid, a[2], 24))
        except OSError as e:
            raise Unreadable(f"open_how: {e.strerror}") from None
        raw = self._str(tid, a[1])
        start = self._cwd(tid) if _s32(a[0]) == AT_FDCWD else self._fd(tid, _s32(a[0]))
        if resolve & (files.RESOLVE_IN_ROOT | files.RESOLVE_BENEATH):
            # The path lives under dirfd, absolute or not, and so do links.
            path = os.path.join(start, raw.lstrip("/"))
            real = _resolve(path, pid, tid, not flags & O_NOFOLLOW, start)
            req = self._open(name, pid, tid, path, flags, mode, real)
        else:
            path = os.path.join(start, raw) if raw else start
            req = self._open(name, pid, tid, path, flags, mode)
            start = "/" if raw.startswith("/") else start
        req.open_at = (start, resolve)
        # The kernel reads open_how again after a CONTINUE: what it would
        # refuse is refused here, not continued.
        bad = flags & ~OPEN_FLAGS or resolve & ~0x3F or (mode and not flags & (O_CREAT | O_TMPFILE))
        if bad or (resolve & files.RESOLVE_BENEATH and raw.startswith("/")):
            err = errno.EINVAL if bad else errno.EXDEV
            req.open_spec, req.action = None, lambda: -err
        return req

    def _h_creat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        path = self._path(pid, tid, AT_FDCWD, a[0])
        return self._open(name, pid, tid, path, O_CREAT | O_TRUNC | os.O_WRONLY, a[1])

    def _h_truncate(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        req = self._file(name, pid, tid, ["write"], self._path(pid, tid, AT_FDCWD, a[0]))
        length = a[1]
        return self._on_path(
            req, True, lambda p: os.truncate(p, length), os.O_WRONLY | os.O_NONBLOCK
        )

    # Name operations: an allowed one is done by the supervisor on the names
    # it decided, in their pinned parent directories (see _pinned.py).
    def _h_unlink(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        path = self._path(pid, tid, AT_FDCWD, a[0])
        req = self._file(name, pid, tid, ["delete"], path, False)
        flags = _pinned.AT_REMOVEDIR if name == "rmdir" else 0
        return _pinned.unlink(req, _pinned.target(path, req.fields.get("resolved", path)), flags)

    _h_rmdir = _h_unlink

    def _h_unlinkat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        path = self._path(pid, tid, a[0], a[1])
        req = self._file(name, pid, tid, ["delete"], path, False)
        return _pinned.unlink(req, _pinned.target(path, req.fields.get("resolved", path)), a[2])

    def _two(
        self, name: str, pid: int, tid: int, op: str, old: str, new: str, flags: int = 0,
        fd_of: tuple[int, int] | None = None,
    ) -> Request:  # fmt: skip
        """A rename or a link (``flags``: the call's; AT_SYMLINK_FOLLOW
        decides the link on what the old name leads to)."""
        a = self._file(name, pid, tid, [op], old, bool(flags & _pinned.AT_SYMLINK_FOLLOW))
        b = self._file(name, pid, tid, [op], new, False)
        d = worst([a.decision, b.decision])
        req = Request("file", op, name, pid, tid, d, {"path": old, "dest": new})
        real_old = a.fields.get("resolved", old)
        t_old = _pinned.target(old, real_old)
        t_new = _pinned.target(new, b.fields.get("resolved", new))
        if op == "rename":
            return _pinned.rename(req, t_old, t_new, flags)
        if flags & _pinned.AT_SYMLINK_FOLLOW:
            fd_of = _pinned.proc_fd(_resolve(old, pid, tid, False)) or fd_of
            t_old = _pinned.Target(*os.path.split(real_old))
        return _pinned.link(req, t_old, t_new, flags, fd_of, real_old)

    def _h_rename(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._two(
            name,
            pid,
            tid,
            "rename",
            self._path(pid, tid, AT_FDCWD, a[0]),
            self._path(pid, tid, AT_FDCWD, a[1]),
        )

    def _h_renameat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._two(
            name,
            pid,
            tid,
            "rename",
            self._path(pid, tid, a[0], a[1]),
            self._path(pid, tid, a[2], a[3]),
            a[4] & 0xFFFFFFFF if name == "renameat2" else 0,
        )

    _h_renameat2 = _h_renameat

    def _h_link(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._two(
            name,
            pid,
            tid,
            "link",
            self._path(pid, tid, AT_FDCWD, a[0]),
            self._path(pid, tid, AT_FDCWD, a[1]),
        )

    def _h_linkat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._two(
            name,
            pid,
            tid,
            "link",
            self._path(pid, tid, a[0], a[1], a[4]),
            self._path(pid, tid, a[2], a[3]),
            a[4] & 0xFFFFFFFF,
            (pid, _s32(a[0])) if a[4] & AT_EMPTY_PATH else None,
        )

    def _h_symlink(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._symlink(name, pid, tid, self._str(tid, a[0]), AT_FDCWD, a[1])

    def _symlink(self, name: str, pid: int, tid: int, text: str, dirfd: int, addr: int) -> Request:
        path = self._path(pid, tid, dirfd, addr)
        req = self._file(name, pid, tid, ["link"], path, False, target=text)
        return _pinned.symlink(req, text, _pinned.target(path, req.fields.get("resolved", path)))

    def _h_symlinkat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._symlink(name, pid, tid, self._str(tid, a[0]), a[1], a[2])

    def _mkdir(self, name: str, pid: int, tid: int, path: str, mode: int) -> Request:
        req = self._file(name, pid, tid, ["mkdir"], path, False)
        return _pinned.mkdir(req, _pinned.target(path, req.fields.get("resolved", path)), mode)

    def _h_mkdir(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._mkdir(name, pid, tid, self._path(pid, tid, AT_FDCWD, a[0]), a[1])

    def _h_mkdirat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._mkdir(name, pid, tid, self._path(pid, tid, a[0], a[1]), a[2])

    def _mknod(self, name: str, pid: int, tid: int, path: str, mode: int) -> Request:
        """A FIFO, a socket or a regular file is a create; a device node
        (which would open a disk or a terminal) is refused."""
        if stat.S_IFMT(mode) in (stat.S_IFCHR, stat.S_IFBLK):
            return self._refuse(
                name, pid, tid, (), message="a device node", path=path, mode=oct(mode)
            )
        req = self._file(name, pid, tid, ["create"], path, False)
        return _pinned.mknod(req, _pinned.target(path, req.fields.get("resolved", path)), mode)

    def _h_mknod(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._mknod(name, pid, tid, self._path(pid, tid, AT_FDCWD, a[0]), a[1])

    def _h_mknodat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._mknod(name, pid, tid, self._path(pid, tid, a[0], a[1]), a[2])

    # File times are a write: whoever may write a file may set its times.
    def _times(
        self, name: str, pid: int, tid: int, dirfd: int, path_addr: int, times: bytes | None,
        flags: int = 0,
    ) -> Request:  # fmt: skip
        """``times``: two struct timespec as the kernel takes them (None: now).
        By path, done by the supervisor (utimensat through an O_PATH fd);
        without a path (futimens), on the supervisor's copy of the fd."""
        if path_addr == 0:
            return _metadata.on_fd(
                self, name, pid, tid, dirfd, "write",
                lambda c: files.futimens(c.fd, times) if c.shared
                else files.utimensat(str(c.target), times),
            )  # fmt: skip
        path = self._path(pid, tid, dirfd, path_addr, flags)
        follow = not flags & AT_SYMLINK_NOFOLLOW
        req = self._file(name, pid, tid, ["write"], path, follow)
        return self._on_path(req, follow, lambda p: files.utimensat(p, times))

    def _read_times(self, tid: int, addr: int, unit: str) -> bytes | None:
        """Two timestamps at ``addr`` as two struct timespec: ``timespec``
        as is, ``timeval`` (microseconds) or ``utimbuf`` (seconds) converted."""
        if addr == 0:
            return None
        size = 16 if unit == "utimbuf" else 32
        try:
            raw = self.mem.read_exact(tid, addr, size)
        except OSError as e:
            raise Unreadable(f"times at {addr:#x}: {e.strerror}") from None
        if unit == "timespec":
            return raw
        if unit == "utimbuf":
            atime, mtime = struct.unpack("<qq", raw)
            return struct.pack("<qqqq", atime, 0, mtime, 0)
        a_s, a_us, m_s, m_us = struct.unpack("<qqqq", raw)
        if not (0 <= a_us < 1_000_000 and 0 <= m_us < 1_000_000):
            return struct.pack("<qqqq", 0, -1, 0, -1)  # invalid: the kernel says EINVAL
        return struct.pack("<qqqq", a_s, a_us * 1000, m_s, m_us * 1000)

    def _h_utimensat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        times = self._read_times(tid, a[2], "timespec")
        return self._times(name, pid, tid, a[0], a[1], times, a[3])

    def _h_futimesat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._times(name, pid, tid, a[0], a[1], self._read_times(tid, a[2], "timeval"))

    def _h_utimes(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        times = self._read_times(tid, a[1], "timeval")
        return self._times(name, pid, tid, AT_FDCWD, a[0], times)

    def _h_utime(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        times = self._read_times(tid, a[1], "utimbuf")
        return self._times(name, pid, tid, AT_FDCWD, a[0], times)

    # chmod, chown and truncate by path are done by the supervisor on the
    # path it decided on (through an O_PATH fd opened without following any
    # symlink), so a racing thread cannot redirect them; Landlock has no
    # right for chmod or chown to fall back on.
    def _on_path(
        self, req: Request, follow: bool, act: Callable[[str], None], flags: int = os.O_PATH
    ) -> Request:
        real = req.fields.get("resolved", req.fields["path"])
        nofollow = 0 if follow else os.O_NOFOLLOW

        def on_pinned(_umask: int) -> None:
            fd = files.openat2(real, flags | nofollow | os.O_CLOEXEC, 0, files.RESOLVE_NO_SYMLINKS)
            try:
                act(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)

        return _pinned.attach(req, on_pinned)

    def _chmod(self, name: str, pid: int, tid: int, path: str, mode: int, follow: bool) -> Request:
        req = self._file(name, pid, tid, ["chmod"], path, follow)
        return self._on_path(req, follow, lambda p: os.chmod(p, mode & 0o7777))

    def _h_chmod(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._chmod(name, pid, tid, self._path(pid, tid, AT_FDCWD, a[0]), a[1], True)

    def _h_fchmod(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        mode = a[1] & 0o7777
        return _metadata.on_fd(
            self, name, pid, tid, a[0], "chmod", lambda c: os.chmod(c.target, mode)
        )

    def _h_fchmodat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        flags = a[3] if name == "fchmodat2" else 0
        path = self._path(pid, tid, a[0], a[1], flags)
        return self._chmod(name, pid, tid, path, a[2], not flags & AT_SYMLINK_NOFOLLOW)

    _h_fchmodat2 = _h_fchmodat

    def _chown(
        self, name: str, pid: int, tid: int, path: str, uid: int, gid: int, follow: bool
    ) -> Request:
        req = self._file(name, pid, tid, ["chown"], path, follow)
        u, g = _id(uid), _id(gid)
        return self._on_path(req, follow, lambda p: os.chown(p, u, g))

    def _h_chown(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        path = self._path(pid, tid, AT_FDCWD, a[0])
        return self._chown(name, pid, tid, path, a[1], a[2], name != "lchown")

    _h_lchown = _h_chown

    def _h_fchown(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        u, g = _id(a[1]), _id(a[2])
        return _metadata.on_fd(
            self, name, pid, tid, a[0], "chown", lambda c: os.chown(c.target, u, g)
        )

    def _h_fchownat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        path = self._path(pid, tid, a[0], a[1], a[4])
        return self._chown(name, pid, tid, path, a[2], a[3], not a[4] & AT_SYMLINK_NOFOLLOW)

    # -- exec ---------------------------------------------------------------
    def _exec(
        self, name: str, pid: int, tid: int, path: str, argv_addr: int, path_addr: int = 0,
        empty_fd: int | None = None,
    ) -> Request:  # fmt: skip
        try:
            argv = [
                os.fsdecode(self.mem.read_cstring(tid, p, 131072))
                for p in self.mem.read_ptr_array(tid, argv_addr)
            ]
        except OSError as e:
            raise Unreadable(f"argv: {e.strerror}") from None
        real = _resolve(path, pid, tid, True)
        # What runs besides the path: ld.so's program, a script's interpreter,
        # a copy of a named program, a file with none on disk.
        found = self.exec_identity.judge(pid, tid, path, real, argv, empty_fd)
        names = [self.policy.check_command(p, argv) for p in {path, real}]
        decision = worst(names + found.decisions)
        fields: dict[str, Any] = {"path": path, "argv": argv, **found.fields}
        if real != path:
            fields["resolved"] = real
        req = Request("exec", "exec", name, pid, tid, decision, fields)
        if decision.decision == "redirect":
            self._redirect(req, path_addr)
        return req

    def _redirect(self, req: Request, path_addr: int) -> None:
        """Run the rule's redirect_to instead, when answering (see _redirect.py)."""
        d = req.decision
        target = list(d.redirect or ())
        req.fields["redirect_to"] = target
        raw = b""
        if path_addr:
            with contextlib.suppress(OSError):
                raw = self.mem.read_cstring(req.tid, path_addr)
        if self.redirector is None or not raw or not target:
            req.decision = pol.Decision("deny", d.rule, "redirect unavailable here")
            return
        redirector = self.redirector
        message = d.message or f"agentsh: {req.fields['argv'][0]} redirected to {target[0]}"

        def point_at_stub() -> int:
            result = redirector.redirect(req.tid, path_addr, raw, target, message)
            if result < 0:
                # Could not redirect: refuse rather than run the original.
                req.fields["result"] = errno.errorcode.get(-result, str(-result))
                req.decision = pol.Decision("deny", d.rule, "redirect failed")
                return -errno.EACCES
            return CONTINUE

        req.action = point_at_stub

    def _h_execve(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._exec(name, pid, tid, self._path(pid, tid, AT_FDCWD, a[0]), a[1], a[0])

    def _h_execveat(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        empty = _s32(a[0]) if a[4] & AT_EMPTY_PATH else None
        return self._exec(name, pid, tid, self._path(pid, tid, a[0], a[1], a[4]), a[2], 0, empty)

    # -- refused outright ---------------------------------------------------
    def _refuse(
        self, name: str, pid: int, tid: int, a: tuple[int, ...], err: int = errno.EPERM,
        message: str = "", **fields: Any,
    ) -> Request:  # fmt: skip
        d = pol.Decision("deny", BLOCKED_RULE, message)
        return Request(
            "syscall_blocked", name, name, pid, tid, d,
            {"args": [hex(x) for x in a[:3]], **fields},
            err=None if err == errno.EPERM else err,
        )  # fmt: skip

    def _blocked(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._refuse(name, pid, tid, a)

    def _refuser(self, err: int) -> Callable[[str, int, int, tuple[int, ...]], Request]:
        return lambda name, pid, tid, a: self._refuse(name, pid, tid, a, err)

    # Only the refused arguments reach us (see the catalog's rules): a
    # persona other than a query, TIOCSTI/TIOCLINUX and inode flags,
    # CLONE_NEWUSER, hardware poisoning, a filter with its own listener.
    _h_personality = _blocked
    _h_unshare = _subcmds.namespaces  # any CLONE_NEW*
    # sub-commands no allowed class names (see _subcmds.py)
    _h_prctl = _h_setsockopt = _subcmds.sub_command
    _h_fcntl = _subcmds.fcntl_cmd
    _h_madvise = _blocked
    _h_seccomp = _blocked

    def _h_ioctl(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        if a[1] & 0xFFFFFFFF in _metadata.INODE_FLAG_REQUESTS:  # a chmod decision
            return _metadata.inode_flags_ioctl(self, name, pid, tid, a)
        return _subcmds.ioctl(self, name, pid, tid, a)

    # xattrs and inode flags by path: file decisions (see _metadata.py)
    _h_setxattr = _h_lsetxattr = _h_fsetxattr = _h_setxattrat = _metadata.set_xattr
    _h_removexattr = _h_lremovexattr = _h_fremovexattr = _metadata.remove_xattr
    _h_removexattrat = _metadata.remove_xattr
    _h_file_setattr = _metadata.file_setattr

    # -- socket families: only the refused ones reach us (the catalog's rules)
    def _h_socket(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        domain, kind, protocol = _s32(a[0]), _s32(a[1]), _s32(a[2])
        if self._filter_allows(name, a):  # not trapped by our filter: never refused here
            return Request(
                "syscall_blocked", name, name, pid, tid, pol.Decision("allow", ""), quiet=True
            )
        what = _socket_names(domain, kind, protocol)
        if domain == syscalls.AF_NETLINK:
            message = f"a netlink socket of protocol {what['protocol']}"
        elif domain in (syscalls.AF_INET, syscalls.AF_INET6):
            message = f"an {what['family']} {what['sock_type']} socket"
        else:
            message = f"a socket of family {what['family']}"
        return self._refuse(name, pid, tid, a, message=message + " (not allowed)", **what)

    _h_socketpair = _h_socket

    @staticmethod
    def _filter_allows(name: str, a: tuple[int, ...]) -> bool:
        return syscalls.CATALOG[name].action(a) == syscalls.ALLOW

    # -- limits and priorities, by process id: the sandbox's own only --------
    def _own(self, name: str, pid: int, tid: int, a: tuple[int, ...], target: int) -> Request:
        """A process (or thread: by its thread group) of this sandbox; 0 is
        the caller. Anything else, the supervisor first, is refused: a
        limit or a priority set on it would starve or stop it."""
        if target in (0, pid, tid) or (target > 0 and self._inside(self._tgid(target), pid)):
            allow = pol.Decision("allow", "")
            return Request("syscall_blocked", name, name, pid, tid, allow, quiet=True)
        message = "a process outside the sandbox"
        return self._refuse(name, pid, tid, a, message=message, target=target)

    def _inside(self, target: int, pid: int) -> bool:
        return target == pid or self.tree.inside(target)

    def _h_prlimit64(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        if a[2] == 0:  # no new limit: a read, as /proc/PID/limits is
            return self._own(name, pid, tid, a, 0)
        return self._own(name, pid, tid, a, _s32(a[0]))

    def _h_sched_setparam(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._own(name, pid, tid, a, _s32(a[0]))

    _h_sched_setscheduler = _h_sched_setparam
    _h_sched_setaffinity = _h_sched_setparam
    _h_sched_setattr = _h_sched_setparam
    _h_migrate_pages = _h_sched_setparam
    _h_move_pages = _h_sched_setparam

    def _h_setpriority(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        if _s32(a[0]) != syscalls.PRIO_PROCESS:  # a process group, or every process of a user
            return self._refuse(name, pid, tid, a, message="a process group or a user")
        return self._own(name, pid, tid, a, _s32(a[1]))

    def _h_ioprio_set(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        if _s32(a[0]) != syscalls.IOPRIO_WHO_PROCESS:
            return self._refuse(name, pid, tid, a, message="a process group or a user")
        return self._own(name, pid, tid, a, _s32(a[1]))

    # -- process creation ---------------------------------------------------
    def _fork(self, name: str, pid: int, tid: int) -> Request:
        limit = self.policy.limits.max_processes
        if self.tree.reserve_process(limit):
            return Request(
                "syscall_blocked", name, name, pid, tid, pol.Decision("allow", ""), quiet=True
            )
        d = pol.Decision("deny", LIMIT_RULE, f"at most {limit} processes")
        return Request(
            "syscall_blocked", name, name, pid, tid, d, {"limit": limit}, err=errno.EAGAIN
        )

    def _h_fork(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._fork(name, pid, tid)

    _h_vfork = _h_fork

    def _h_clone(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        if a[0] & subcommands.CLONE_NEW_CLONE:
            return _subcmds.namespaces(self, name, pid, tid, a)
        if a[0] & syscalls.CLONE_UNTRACED:
            # ptrace would not follow the child: it would run unseen and
            # outlive the command (seccomp cannot strip the flag).
            return self._refuse(name, pid, tid, a, message="CLONE_UNTRACED")
        return self._fork(name, pid, tid)

    # -- signals ------------------------------------------------------------
    def _signal(self, name: str, pid: int, tid: int, target: int, sig: int) -> Request:
        inside = target == pid or self.tree.inside(target)  # itself: always its own tree
        d = self.policy.check_signal(sig, "sandbox" if inside else "outside")
        fields = {"target": target, "signal": sig, "target_inside": inside}
        return Request("signal", name, name, pid, tid, d, fields)

    def _h_kill(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        target, sig = _s32(a[0]), _s32(a[1])
        if target > 0:
            return self._signal(name, pid, tid, target, sig)
        # A process group (0: the caller's) or every process (-1): decided on
        # its members. One outside the sandbox makes it a signal to outsiders;
        # otherwise the kernel may deliver it as asked.
        if target == -1:
            members = procfs.all_pids()
        else:
            pgid = _pgid(pid) if target == 0 else -target
            members = procfs.group_members(pgid) if pgid is not None else []
        outside = [p for p in members if p != pid and not self.tree.inside(p)]
        d = self.policy.check_signal(sig, "outside" if outside else "sandbox")
        fields: dict[str, Any] = {"target": target, "signal": sig, "members": len(members)}
        if outside:
            fields["outside_members"] = outside[:16]
        return Request("signal", name, name, pid, tid, d, fields)

    def _h_tkill(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._signal(name, pid, tid, self._tgid(_s32(a[0])), _s32(a[1]))

    def _h_tgkill(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._signal(name, pid, tid, _s32(a[0]), _s32(a[2]))

    def _h_rt_sigqueueinfo(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._signal(name, pid, tid, _s32(a[0]), _s32(a[1]))

    def _h_rt_tgsigqueueinfo(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        return self._signal(name, pid, tid, _s32(a[0]), _s32(a[2]))

    def _h_pidfd_send_signal(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request:
        target = procfs.pidfd_pid(tid, _s32(a[0]))
        if target is None:
            raise Unreadable(f"fd {_s32(a[0])} of {tid} is not a pidfd")
        return self._signal(name, pid, tid, target, _s32(a[1]))

    def _tgid(self, tid: int) -> int:
        try:
            return self.tgid_ppid(tid)[0]
        except OSError:
            return tid

    # -- network ------------------------------------------------------------
    def _sockaddr(
        self, name: str, op: str, pid: int, tid: int, addr: int, length: int
    ) -> Request | None:
        if addr == 0 or length < 2:
            return None
        try:
            raw = self.mem.read_exact(tid, addr, min(length, 128))
        except OSError as e:
            raise Unreadable(f"sockaddr: {e.strerror}") from None
        return self._decide_sockaddr(name, op, pid, tid, raw)

    def _decide_sockaddr(
        self, name: str, op: str, pid: int, tid: int, raw: bytes
    ) -> Request | None:
        """The decision on sockaddr bytes read once (None: not ours to decide)."""
        family = struct.unpack_from("=H", raw)[0]
        if family == socket.AF_UNSPEC and op != "connect" and len(raw) >= 8:
            # An IPv4 socket takes AF_UNSPEC as AF_INET in sendto and bind
            # (a connect with it disconnects): decide the address it carries.
            family = socket.AF_INET
        if family == socket.AF_INET and len(raw) >= 8:
            port = struct.unpack_from("!H", raw, 2)[0]
            ip = str(ipaddress.IPv4Address(raw[4:8]))
        elif family == socket.AF_INET6 and len(raw) >= 24:
            port = struct.unpack_from("!H", raw, 2)[0]
            ip = str(ipaddress.IPv6Address(raw[8:24]))
        elif family == socket.AF_UNIX:
            return self._unix(name, op, pid, tid, raw)
        else:
            return None  # families we do not decide on keep the kernel's answer
        fields: dict[str, Any] = {"addr": ip, "port": port}
        if op == "bind" or self.policy.host_local != "closed":
            d = self.policy.check_network(op, ip, port)
        else:
            route = self.hosts.route(ip)
            d = self.policy.check_network(
                op, ip, port, local=self.hosts.is_host(route),
                own=lambda: self.hosts.own_inet(ip, port, route),
            )  # fmt: skip
        return Request("net", op, name, pid, tid, d, fields, sockaddr=raw)

    def _unix(self, name: str, op: str, pid: int, tid: int, raw: bytes) -> Request | None:
        sun = raw[2:]
        if not sun:  # unnamed (autobind): no path to decide on
            return None
        pin: list[tuple[int, int] | None] = []  # the socket file an "own" answer saw

        def own(path: str, abstract: bool) -> Callable[[], bool]:
            def check() -> bool:  # asked once, however many names are checked
                if not pin:
                    pin.append(self.hosts.own_unix(path, abstract))
                return pin[0] is not None

            return check

        if sun[0] == 0:
            path = "@" + os.fsdecode(sun[1:]).rstrip("\0")
            d = self.policy.check_unix(op, path, True, own=own(path, True))
            return Request("unix", op, name, pid, tid, d, {"path": path}, sockaddr=raw)
        path = os.fsdecode(sun.split(b"\0", 1)[0])
        if not path.startswith("/"):
            path = os.path.join(self._cwd(tid), path)
        # connect follows symlinks to the socket; bind creates the last name.
        real = _resolve(path, pid, tid, op != "bind")
        paths = [real] if ".." in path.split("/") else list(dict.fromkeys([path, real]))
        # Whether the socket is the sandbox's own is a fact of the file that
        # `real` names, whichever name it was reached by.
        d = worst([self.policy.check_unix(op, p, False, own=own(real, False)) for p in paths])
        fields = {"path": path, **({"resolved": real} if real != path else {})}
        req = Request("unix", op, name, pid, tid, d, fields, sockaddr=raw)
        if pin and d.rule == pol.OWN_RULE:
            req.pin = pin[0]
        return req

    # In notify mode the supervisor performs an allowed connect/bind/send
    # itself, on a copy of the socket (pidfd_getfd) and with the address bytes
    # it decided on: the kernel would otherwise read the tracee's buffer
    # again, which a racing thread may have changed. Unix socket paths are
    # pinned through an O_PATH fd opened without following symlinks.
    def _net(
        self, req: Request | None, fd: int, send: tuple[bytes, int] | None = None,
        control: bytes = b"",
    ) -> Request | None:  # fmt: skip
        if req is None or not self.emulate_net or req.decision.decision not in ("allow", "audit"):
            return req
        pid, op, raw = req.pid, req.op, req.sockaddr
        unix_path = (
            req.fields.get("resolved", req.fields.get("path")) if req.kind == "unix" else None
        )
        abstract = unix_path is not None and unix_path.startswith("@")

        def run() -> int:
            pinned = -1
            try:
                sfd = sockets.steal(pid, fd)
                try:
                    addr = raw
                    if unix_path is not None and not abstract:
                        parent, leaf = os.path.split(unix_path)
                        target = parent if op == "bind" else unix_path
                        pinned = files.openat2(target, os.O_PATH | os.O_CLOEXEC, 0,
                                               files.RESOLVE_NO_SYMLINKS)  # fmt: skip
                        if req.pin is not None and _identity(pinned) != req.pin:
                            # swapped since it was found to be the sandbox's own
                            req.fields["result"] = "ECONNREFUSED"
                            return -errno.ECONNREFUSED
                        pinned_path = f"/proc/self/fd/{pinned}" + (
                            f"/{leaf}" if op == "bind" else ""
                        )
                        addr = sockets.unix_sockaddr(pinned_path)
                    if op == "connect":
                        sockets.connect(sfd, addr)
                        return 0
                    if op == "bind":
                        sockets.bind(sfd, addr)
                        return 0
                    assert send is not None
                    if control:
                        return sockets.sendmsg(sfd, send[0], send[1], addr, control)
                    return sockets.sendto(sfd, send[0], send[1], addr)
                finally:
                    os.close(sfd)
            except OSError as e:
                err = e.errno or errno.EACCES
                req.fields["result"] = errno.errorcode.get(err, str(err))
                return -err
            finally:
                if pinned >= 0:
                    os.close(pinned)

        req.action = run
        req.run_async = op != "bind"  # a connect or a send may block
        return req

    def _h_connect(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request | None:
        req = self._sockaddr(name, "connect", pid, tid, a[1], a[2])
        if (
            req is not None
            and self.proxy is not None
            and self.proxy.takes(req, _s32(a[0]), self.emulate_net)
        ):
            return req
        return self._net(req, _s32(a[0]))

    def _h_bind(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request | None:
        return self._net(self._sockaddr(name, "bind", pid, tid, a[1], a[2]), _s32(a[0]))

    def _h_sendto(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request | None:
        if refusal := _netlink.sendto_refusal(self, name, pid, tid, a):  # a routing change
            return refusal
        req = self._sockaddr(name, "send", pid, tid, a[4], a[5])
        if req is None or not self.emulate_net:
            return req
        data = self._buffer(tid, a[1], a[2] & 0xFFFFFFFFFFFF)
        return self._net(req, _s32(a[0]), (data, _s32(a[3])))

    def _buffer(self, tid: int, addr: int, length: int) -> bytes:
        try:
            return self.mem.read_exact(tid, addr, min(length, _SEND_MAX)) if length else b""
        except OSError as e:
            raise Unreadable(f"send buffer: {e.strerror}") from None

    def _msghdr(self, name: str, pid: int, tid: int, addr: int) -> Request | None:
        try:
            msg_name, namelen = struct.unpack("<QI", self.mem.read_exact(tid, addr, 12))
            raw = self.mem.read_exact(tid, msg_name, min(namelen, 128)) if msg_name else b""
        except OSError as e:
            raise Unreadable(f"msghdr: {e.strerror}") from None
        req = self._decide_sockaddr(name, "send", pid, tid, raw) if len(raw) >= 2 else None
        if req is None and raw and self.emulate_net:
            # A family not decided here (netlink to a port or groups): the
            # supervisor sends to exactly these bytes, read once.
            req = _sends.quiet_allow(name, pid, tid, raw)
        return req

    def _message(self, tid: int, msghdr: int) -> tuple[bytes, bool]:
        """(the data of a struct msghdr's iovecs, whether it carries ancillary data)."""
        try:
            iov, iovlen, _control, controllen = struct.unpack(
                "<QQQQ", self.mem.read_exact(tid, msghdr + 16, 32)
            )
            vecs = self.mem.read_exact(tid, iov, 16 * min(iovlen, 1024)) if iovlen else b""
        except OSError as e:
            raise Unreadable(f"msghdr: {e.strerror}") from None
        data = b"".join(
            self._buffer(tid, *struct.unpack_from("<QQ", vecs, i)) for i in range(0, len(vecs), 16)
        )
        return data[:_SEND_MAX], controllen != 0

    def _h_sendmsg(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request | None:
        fd = _s32(a[0])
        control = _subcmds.read_control(self, tid, a[1])
        refusal = _subcmds.control_refusal(self, name, pid, tid, fd, control) if control else None
        refusal = refusal or _netlink.sendmsg_refusal(self, name, pid, tid, fd, a[1])
        if refusal:
            return refusal
        req = self._msghdr(name, pid, tid, a[1])
        if not self.emulate_net:
            return req
        data, _ancillary = self._message(tid, a[1])
        # Sent by the supervisor, with or without an address or control
        # messages: a continued call would read the message again (_sends.py).
        req = req or _sends.quiet_allow(name, pid, tid)
        if control and not _subcmds.emulable(pid, fd):  # a unix socket's fds or credentials
            if _sends.credentials(control):
                return _sends.refuse_credentials(self, name, pid, tid, req)
            return _sends.sendmsg(req, fd, data, _s32(a[2]), control)
        return self._net(req, fd, (data, _s32(a[2])), control)

    def _h_sendmmsg(self, name: str, pid: int, tid: int, a: tuple[int, ...]) -> Request | None:
        """Every message's destination must pass; the worst decision decides.
        Allowed, the supervisor sends them all itself (as for sendmsg) and
        writes each msg_len back (_sends.py)."""
        found: Request | None = None
        count = min(a[2] & 0xFFFFFFFF, 1024)
        fd, flags = _s32(a[0]), _s32(a[3])
        if refusal := _netlink.sendmmsg_refusal(self, name, pid, tid, fd, a[1], count):
            return refusal
        decided = []  # each message's header, decision and control bytes, read once
        for i in range(count):
            hdr = a[1] + _MMSGHDR * i
            control = _subcmds.read_control(self, tid, hdr)
            refusal = (
                _subcmds.control_refusal(self, name, pid, tid, fd, control) if control else None
            )
            if refusal:
                return refusal
            r = self._msghdr(name, pid, tid, hdr)
            decided.append((hdr, r, control))
            if r is not None and (
                found is None or RANK[r.decision.decision] > RANK[found.decision.decision]
            ):
                found = r
        if found is None and self.emulate_net:  # no address: sent all the same (_sends.py)
            found = _sends.quiet_allow(name, pid, tid)
        if (
            found is None
            or not self.emulate_net
            or found.decision.decision not in ("allow", "audit")
        ):
            return found
        unix = any(c for _h, _r, c in decided) and not _subcmds.emulable(pid, fd)
        if unix and any(_sends.credentials(c) for _h, _r, c in decided):
            return _sends.refuse_credentials(self, name, pid, tid, found)
        messages = [(hdr, r, self._message(tid, hdr)[0], control) for hdr, r, control in decided]
        return _sends.sendmmsg(found, tid, fd, flags, messages)
