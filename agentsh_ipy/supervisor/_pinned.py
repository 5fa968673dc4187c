"""Name operations the supervisor performs itself, on what it decided.

A CONTINUE answer lets the kernel read the tracee's path buffer again, after
the decision: a racing thread (or another process sharing that memory) can
put another name there by then. So an allowed rename, link, unlink, rmdir,
mkdir, symlink or mknod is not continued: the supervisor opens each parent
directory of the decided real path (RESOLVE_NO_SYMLINKS, so a component
swapped for a symlink since fails instead of leading elsewhere), runs the
*at call on (that fd, the final name) with the caller's flags, and answers
with its result or errno. ptrace mode runs the same action and skips the
call with its result.

The supervisor acts with its own credentials: it does so only when they are
the caller's (fsuid, fsgid, groups, effective capabilities), so what it
creates is owned as the caller's would be and it can do nothing the caller
could not. Otherwise (a root sandbox whose process changed user) the call is
refused, never done as someone else. Modes get the caller's umask, applied
here in a thread with its own umask (unshare(CLONE_FS)), or where the host
refuses that, explicitly (_modes).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from typing import NamedTuple

from .._linux import files, names
from . import _modes, _onfd
from ._request import Request

AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000
_PROC_FD = re.compile(r"/proc/(\d+)/fd/(\d+)")
_CREDS = ("Uid", "Gid", "Groups", "CapEff")


class Target(NamedTuple):
    """The directory to pin and the name in it (a trailing slash kept: the
    kernel gives it its meaning)."""

    dir: str
    leaf: str


def target(path: str, real: str) -> Target:
    """``path``: as the caller named it (joined to its base); ``real``: the
    decided path, resolved up to its last component."""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last in (".", ".."):  # the kernel refuses these by name: keep it
        return Target(real, last)
    slash = "/" if path.endswith("/") and path.strip("/") else ""
    parent, leaf = os.path.split(real.rstrip("/") or "/")
    return Target(parent or "/", (leaf or ".") + slash)


def _pin(directory: str) -> int:
    return files.openat2(
        directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, files.RESOLVE_NO_SYMLINKS
    )


@contextlib.contextmanager
def _pinned(*dirs: str) -> Iterator[list[int]]:
    fds: list[int] = []
    try:
        for d in dirs:
            fds.append(_pin(d))
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


class Caller(NamedTuple):
    creds: tuple[str, ...]
    umask: int


def _status(path: str) -> Caller:
    fields: dict[str, str] = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    # Uid/Gid: real, effective, saved, fs; the fs ids are what file ops use.
    creds = (
        fields["Uid"].split()[3], fields["Gid"].split()[3],
        " ".join(sorted(fields.get("Groups", "").split())), fields["CapEff"],
    )  # fmt: skip
    return Caller(creds, int(fields.get("Umask", "022"), 8))


_local = threading.local()


def _own_creds() -> tuple[str, ...]:
    creds: tuple[str, ...] | None = getattr(_local, "creds", None)
    if creds is None:
        creds = _local.creds = _status("/proc/thread-self/status").creds
    return creds


@contextlib.contextmanager
def _umask_zero() -> Iterator[bool]:
    """umask 0 in this thread only (its own fs_struct, made once); False
    when the host refuses unshare(CLONE_FS): then the process umask applies
    on top of the caller's (never more permissive than asked) and what it
    took away is put back (_modes.fix_created)."""
    private: bool | None = getattr(_local, "private", None)
    if private is None:
        try:
            files.unshare_fs()
            private = True
        except OSError:
            private = False
        _local.private = private
    if not private:
        yield False
        return
    old = os.umask(0)
    try:
        yield True
    finally:
        os.umask(old)


def _not_the_callers(req: Request) -> int:
    req.fields["unemulated"] = "the caller's credentials are not the supervisor's"
    req.fields["result"] = "EACCES"
    return -errno.EACCES


def not_as_caller(req: Request) -> int | None:
    """-EACCES (and the audit says why) when the supervisor's credentials
    are not the caller's: a change it makes must be one the caller could
    make (a root sandbox whose process changed user or dropped capabilities
    would gain root's through it)."""
    return None if same_creds(req.tid) else _not_the_callers(req)


def same_creds(tid: int) -> bool:
    """Whether ``tid``'s file credentials are this thread's (see attach)."""
    return _unchangeable_creds() or _status(f"/proc/{tid}/status").creds == _own_creds()


@functools.cache
def _unchangeable_creds() -> bool:
    """True when no sandboxed process can hold other credentials than ours,
    so the per-call /proc read (on every emulated open) can be skipped: an
    unprivileged supervisor whose real, effective, saved and fs ids are one
    uid and one gid and which holds no capability. Its sandbox descends from
    it under no_new_privs (no setuid or file-capability exec), and without
    CAP_SETUID/CAP_SETGID a process can neither take another id nor change
    its groups."""
    fields: dict[str, str] = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    uids, gids = set(fields["Uid"].split()), set(fields["Gid"].split())
    no_caps = int(fields["CapPrm"], 16) == 0 and int(fields["CapEff"], 16) == 0
    return len(uids) == 1 and len(gids) == 1 and uids != {"0"} and no_caps


def attach(req: Request, act: Callable[[int], None]) -> Request:
    """Make ``act(umask)`` the answer of an allowed (or approved) call.
    Raises nothing: a failure is the call's errno, named in the audit."""
    if req.decision.decision not in ("allow", "audit", "approve"):
        return req  # refused, or a soft delete (the trash pins its own move)

    def run() -> int:
        if req.decision.decision not in ("allow", "audit"):  # an approval refused
            return -req.errno
        try:
            caller = _status(f"/proc/{req.tid}/status")
            if caller.creds != _own_creds():
                return _not_the_callers(req)
            with _umask_zero():
                act(caller.umask)
        except OSError as e:
            err = e.errno or errno.EACCES
            req.fields["result"] = errno.errorcode.get(err, str(err))
            return -err
        return 0

    req.action = run
    return req


# -- the operations -----------------------------------------------------------
def unlink(req: Request, t: Target, flags: int) -> Request:
    def act(_umask: int) -> None:
        if flags & ~AT_REMOVEDIR:
            raise OSError(errno.EINVAL, "unlinkat flags")
        with _pinned(t.dir) as (fd,):
            if flags & AT_REMOVEDIR:
                os.rmdir(t.leaf, dir_fd=fd)
            else:
                os.unlink(t.leaf, dir_fd=fd)

    return attach(req, act)


def rename(req: Request, old: Target, new: Target, flags: int) -> Request:
    def act(_umask: int) -> None:
        with _pinned(old.dir, new.dir) as (ofd, nfd):
            names.renameat2(ofd, old.leaf, nfd, new.leaf, flags)

    return attach(req, act)


def _explicit_umask() -> bool:
    return getattr(_local, "private", True) is False


def mkdir(req: Request, t: Target, mode: int) -> Request:
    def act(umask: int) -> None:
        with _pinned(t.dir) as (fd,):
            os.mkdir(t.leaf, mode & 0o1777 & ~umask, dir_fd=fd)
            if _explicit_umask():
                _modes.fix_created(fd, t.leaf.rstrip("/"), stat.S_IFDIR, mode & 0o1777 & ~umask)

    return attach(req, act)


def mknod(req: Request, t: Target, mode: int) -> Request:
    """A FIFO, a socket or a regular file (device nodes are refused before)."""

    def act(umask: int) -> None:
        with _pinned(t.dir) as (fd,):
            os.mknod(t.leaf, stat.S_IFMT(mode) | (mode & 0o7777 & ~umask), 0, dir_fd=fd)
            if _explicit_umask():
                kind = stat.S_IFMT(mode) or stat.S_IFREG  # mknod's type 0 is a regular file
                _modes.fix_created(fd, t.leaf, kind, mode & 0o7777 & ~umask)

    return attach(req, act)


def symlink(req: Request, text: str, t: Target) -> Request:
    """``text``: the link's target as read once, when deciding."""

    def act(_umask: int) -> None:
        with _pinned(t.dir) as (fd,):
            os.symlink(text, t.leaf, dir_fd=fd)

    return attach(req, act)


def link(
    req: Request, old: Target, new: Target, flags: int, fd_of: tuple[int, int] | None, old_real: str
) -> Request:
    """``fd_of``: (pid, fd) when the old name may be an fd rather than a
    path (AT_EMPTY_PATH, or /proc/PID/fd/N followed): the supervisor copies
    that fd and links it only if it is still the file decided on
    (``old_real``); otherwise the old name is a path like any other."""

    def act(_umask: int) -> None:
        if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
            raise OSError(errno.EINVAL, "linkat flags")
        with _pinned(new.dir) as (nfd,):
            if fd_of is not None:
                # pidfd_getfd's copy, or where the host refuses it an O_PATH
                # open of the same file (linked by its /proc/self/fd name)
                copy = _onfd.copy(fd_of[0], fd_of[0], fd_of[1])
                try:
                    if copy.path == old_real:
                        if flags & AT_EMPTY_PATH and copy.shared:
                            names.linkat(copy.fd, "", nfd, new.leaf, AT_EMPTY_PATH)
                        else:  # the /proc/PID/fd/N idiom, through our own copy
                            names.linkat(
                                names.AT_FDCWD, f"/proc/self/fd/{copy.fd}", nfd, new.leaf,
                                AT_SYMLINK_FOLLOW,
                            )  # fmt: skip
                        return
                finally:
                    copy.close()
            # The old path was resolved when deciding (followed when asked):
            # link what it named, without following anything now.
            with _pinned(old.dir) as (ofd,):
                names.linkat(ofd, old.leaf, nfd, new.leaf, 0)

    return attach(req, act)


_PROC_TASK_FD = re.compile(r"/proc/(\d+)/(?:task/(\d+)/)?fd/(\d+)")


def proc_fd_ref(path: str) -> tuple[int, int, int] | None:
    """(pid, tid, fd) of a /proc/PID[/task/TID]/fd/N path, else None."""
    m = _PROC_TASK_FD.fullmatch(path)
    if m is None:
        return None
    pid, tid, fd = m.groups()
    return int(pid), int(tid or pid), int(fd)


def proc_fd(path: str) -> tuple[int, int] | None:
    """(pid, fd) of a /proc/PID/fd/N path, else None."""
    m = _PROC_FD.fullmatch(path)
    return (int(m.group(1)), int(m.group(2))) if m else None


# -- opens the supervisor emulates (notify mode: the fd is injected) ----------
_NAMESPACES = ("net", "uts", "ipc", "mnt", "pid", "user", "cgroup")
_PROC_ATTR = re.compile(r"/proc/\d+/(task/\d+/)?attr(/|$)")


def _namespaces(pid: int | str) -> tuple[int, ...]:
    return tuple(os.stat(f"/proc/{pid}/ns/{n}").st_ino for n in _NAMESPACES)


def emulable_open(real: str, flags: int, tid: int) -> bool:
    """Whether the supervisor opening ``real`` gets what the caller's open
    would (/dev/tty is opened as the caller's own terminal, see _ctty):
    /proc and /sys files resolve some entries by the opener's namespaces
    (/proc/sys/net, /sys/class/net), so they are emulated only when the
    caller's are the supervisor's; an LSM attribute (/proc/PID/attr) may be
    written only by its own task."""
    if real.startswith(("/proc/", "/sys/")) or real in ("/proc", "/sys"):
        if flags & os.O_ACCMODE and _PROC_ATTR.match(real):
            return False
        try:
            return _namespaces(tid) == _namespaces("thread-self")
        except OSError:
            return False
    return True


def is_proc_attr(real: str) -> bool:
    """An LSM attribute file (/proc/PID/attr/*, /proc/PID/task/TID/attr/*)."""
    return bool(_PROC_ATTR.match(real))


def same_meaning(mode: int, flags: int) -> bool:
    """Whether an fd the supervisor opened (O_NONBLOCK, O_NOCTTY) means what
    the caller's open would: files, directories, devices (a terminal then
    never becomes the caller's controlling one: it calls TIOCSCTTY, as
    login_tty does); a FIFO only where its open would not block."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISCHR(mode):
        return True
    if stat.S_ISFIFO(mode):
        return bool(flags & os.O_NONBLOCK) or flags & os.O_ACCMODE == os.O_RDWR
    return False


def open_decided(path: str, flags: int, mode: int, at: tuple[str, int] | None) -> int:
    """Open the decided real ``path`` without following any symlink. ``at``
    (openat2): (the directory the caller's path starts from, its RESOLVE
    flags): the open then starts there, with RESOLVE_BENEATH where the
    caller confined it (the path was resolved inside already) and its
    RESOLVE_NO_XDEV."""
    if at is None:
        return files.openat2(path, flags, mode, files.RESOLVE_NO_SYMLINKS)
    base, resolve = at
    rel = os.path.relpath(path, base)
    extra = resolve & files.RESOLVE_NO_XDEV
    if resolve & (files.RESOLVE_BENEATH | files.RESOLVE_IN_ROOT):
        extra |= files.RESOLVE_BENEATH
    with _pinned(base) as (fd,):
        return files.openat2(rel, flags, mode, files.RESOLVE_NO_SYMLINKS | extra, fd)
