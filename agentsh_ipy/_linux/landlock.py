"""Landlock: the three syscalls, the access rights per ABI, errors in words.

Plumbing only: nothing here knows about policies. The supervisor decides
which rules to add (supervisor/_landlock.py), builds the ruleset here and
hands the fd to the wrapper, which enforces it on itself just before exec
(``landlock_restrict_self`` lives in the stdlib-only wrapper for that
reason; :func:`restrict_self` is the same call for tests and tools).

Struct layouts (linux/landlock.h)::

    struct landlock_ruleset_attr      { __u64 handled_access_fs;
                                        __u64 handled_access_net;   // ABI 4
                                        __u64 scoped; };            // ABI 6
    struct landlock_path_beneath_attr { __u64 allowed_access;
                                        __s32 parent_fd; } __packed;
    struct landlock_net_port_attr     { __u64 allowed_access; __u64 port; };
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from . import _syscall

# The syscall numbers were unified across architectures before Landlock
# (5.13), so these hold on x86_64 and aarch64 alike.
NR_CREATE_RULESET = 444
NR_ADD_RULE = 445
NR_RESTRICT_SELF = 446

CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
RULE_NET_PORT = 2

# -- file system rights -------------------------------------------------------
# ABI 1
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
# ABI 2: reparenting (rename/link across directories). Without it (ABI 1)
# Landlock refuses every reparenting with EXDEV.
FS_REFER = 1 << 13
# ABI 3
FS_TRUNCATE = 1 << 14
# ABI 5
FS_IOCTL_DEV = 1 << 15

# -- network rights (ABI 4) ---------------------------------------------------
NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1

# -- scopes (ABI 6) -----------------------------------------------------------
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

_FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_FS_BY_ABI = {1: _FS_ABI1, 2: _FS_ABI1 | FS_REFER, 3: _FS_ABI1 | FS_REFER | FS_TRUNCATE}

# The only rights a rule on a non-directory may carry; the others act on
# the entries of a directory.
FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV

FS_NAMES = {
    FS_EXECUTE: "execute",
    FS_WRITE_FILE: "write_file",
    FS_READ_FILE: "read_file",
    FS_READ_DIR: "read_dir",
    FS_REMOVE_DIR: "remove_dir",
    FS_REMOVE_FILE: "remove_file",
    FS_MAKE_CHAR: "make_char",
    FS_MAKE_DIR: "make_dir",
    FS_MAKE_REG: "make_reg",
    FS_MAKE_SOCK: "make_sock",
    FS_MAKE_FIFO: "make_fifo",
    FS_MAKE_BLOCK: "make_block",
    FS_MAKE_SYM: "make_sym",
    FS_REFER: "refer",
    FS_TRUNCATE: "truncate",
    FS_IOCTL_DEV: "ioctl_dev",
}
NET_NAMES = {NET_BIND_TCP: "bind_tcp", NET_CONNECT_TCP: "connect_tcp"}
SCOPE_NAMES = {SCOPE_ABSTRACT_UNIX_SOCKET: "abstract_unix_socket", SCOPE_SIGNAL: "signal"}


def fs_rights(abi: int) -> int:
    """Every file system right the given ABI knows (0 for no Landlock)."""
    if abi <= 0:
        return 0
    if abi <= 4:  # ABI 4 added network rights only
        return _FS_BY_ABI[min(abi, 3)]
    return _FS_BY_ABI[3] | FS_IOCTL_DEV


def net_rights(abi: int) -> int:
    """Every network right the given ABI knows."""
    return NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0


def scopes(abi: int) -> int:
    """Every scope the given ABI knows."""
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


def names(access: int, table: dict[int, str] | None = None) -> list[str]:
    """The names of the bits set in ``access`` (unknown bits as hex)."""
    table = FS_NAMES if table is None else table
    out = [name for bit, name in table.items() if access & bit]
    rest = access & ~sum(table)
    if rest:
        out.append(hex(rest))
    return out


# -- errors in words ----------------------------------------------------------
# After the man pages (landlock_create_ruleset(2), landlock_add_rule(2),
# landlock_restrict_self(2)), as the `landlock` package does it.
_COMMON = {
    errno.ENOSYS: "Landlock is not built into this kernel (5.13+ with CONFIG_SECURITY_LANDLOCK) "
    "or a seccomp filter hides it",
    errno.EOPNOTSUPP: "Landlock is built into this kernel but disabled at boot "
    "(add landlock to the lsm= parameter)",
    errno.EFAULT: "a struct address was not readable",
}
_REASONS: dict[str, dict[int, str]] = {
    "landlock_create_ruleset": {
        **_COMMON,
        errno.EINVAL: "unknown flags, an unknown access right, or a too small size",
        errno.E2BIG: "the attribute struct is larger than this kernel knows and not zero-padded",
        errno.ENOMSG: "empty accesses (nothing handled)",
        errno.EPERM: "refused (a seccomp profile of a container?)",
    },
    "landlock_add_rule": {
        **_COMMON,
        errno.EAFNOSUPPORT: "a network rule, but this kernel has no TCP/IP support",
        errno.EINVAL: "the rule's access rights are not a subset of the ruleset's handled "
        "rights, a directory-only right on a non-directory, or a port above 65535",
        errno.ENOMSG: "empty accesses (allowed_access is 0)",
        errno.EBADF: "the ruleset or the path is not an open file descriptor",
        errno.EBADFD: "not a ruleset fd, or the path fd is not an O_PATH-style file fd",
        errno.EPERM: "the ruleset fd is not open for writing",
    },
    "landlock_restrict_self": {
        **_COMMON,
        errno.EINVAL: "flags not supported by this kernel",
        errno.EBADF: "the ruleset is not an open file descriptor",
        errno.EBADFD: "not a ruleset fd",
        errno.EPERM: "the ruleset fd is not readable, or the thread has neither "
        "no_new_privs nor CAP_SYS_ADMIN",
        errno.E2BIG: "too many stacked Landlock domains (16) on this thread",
    },
}


class LandlockError(OSError):
    """A Landlock syscall failed; ``str()`` says why in words."""


def _fail(call: str, err: int, detail: str = "") -> LandlockError:
    reason = _REASONS.get(call, {}).get(err, os.strerror(err))
    name = errno.errorcode.get(err, str(err))
    where = f" ({detail})" if detail else ""
    return LandlockError(err, f"{call}{where}: {name}: {reason}")


def _call(nr: int, call: str, *args: int | ctypes.c_void_p, detail: str = "") -> int:
    try:
        return _syscall.syscall(nr, *args, what=call)
    except OSError as e:
        raise _fail(call, e.errno or 0, detail) from None


# -- structs ------------------------------------------------------------------
class RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def _ptr(obj: ctypes.Structure) -> ctypes.c_void_p:
    return ctypes.c_void_p(ctypes.addressof(obj))


# -- calls --------------------------------------------------------------------
def probe() -> tuple[int, str]:
    """(ABI version, "") or (0, why Landlock cannot be used here)."""
    try:
        return _syscall.syscall(
            NR_CREATE_RULESET, 0, 0, CREATE_RULESET_VERSION, what="landlock_create_ruleset"
        ), ""
    except OSError as e:
        err = e.errno or 0
        if err in (errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
            return 0, str(_fail("landlock_create_ruleset", err, "VERSION"))
        raise _fail("landlock_create_ruleset", err, "VERSION") from None


def abi() -> int:
    """The Landlock ABI version of the running kernel; 0 when Landlock is
    unavailable (not built in, disabled at boot, or refused by a seccomp
    profile)."""
    return probe()[0]


def create_ruleset(handled_fs: int, handled_net: int = 0, scoped: int = 0) -> int:
    """A new ruleset fd (O_CLOEXEC) handling these rights.

    The struct size passed is the smallest that holds the fields in use,
    so an older kernel that knows fewer fields still accepts it."""
    attr = RulesetAttr(handled_fs, handled_net, scoped)
    size = 24 if scoped else 16 if handled_net else 8
    return _call(NR_CREATE_RULESET, "landlock_create_ruleset", _ptr(attr), size, 0)


def add_path_rule(ruleset: int, path: str, access: int) -> int:
    """Allow ``access`` on ``path`` and everything beneath it.

    The path is opened here (O_PATH, following symlinks: the rule is on
    the inode the path leads to). On a non-directory only the file rights
    (:data:`FILE_ONLY`) are valid, so the others are masked off. Returns
    the access actually granted; 0 means no rule was needed (nothing left
    after masking)."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= FILE_ONLY
        if not access:
            return 0
        attr = PathBeneathAttr(access, fd)
        _call(
            NR_ADD_RULE, "landlock_add_rule", ruleset, RULE_PATH_BENEATH, _ptr(attr), 0, detail=path
        )
        return access
    finally:
        os.close(fd)


def add_port_rule(ruleset: int, port: int, access: int) -> None:
    """Allow ``access`` (NET_BIND_TCP / NET_CONNECT_TCP) on TCP ``port``."""
    attr = NetPortAttr(access, port)
    what = f"port {port}"
    _call(NR_ADD_RULE, "landlock_add_rule", ruleset, RULE_NET_PORT, _ptr(attr), 0, detail=what)


def restrict_self(ruleset: int) -> None:
    """Enforce the ruleset on the calling thread (and what it execs or
    forks from now on). Needs no_new_privs (or CAP_SYS_ADMIN)."""
    _call(NR_RESTRICT_SELF, "landlock_restrict_self", ruleset, 0)
