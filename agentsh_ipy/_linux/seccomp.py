"""seccomp: a small BPF assembler for our filter, and the user-notify ioctls.

The filter is built here (in the supervisor) and handed to the wrapper as
bytes, so the wrapper needs no syscall tables and stays stdlib-only.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .arch import Arch

# Filter return actions (linux/seccomp.h).
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_ALLOW = 0x7FFF0000

FILTER_FLAG_NEW_LISTENER = 1 << 3
FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5
USER_NOTIF_FLAG_CONTINUE = 1
ADDFD_FLAG_SETFD = 1

CLONE_NEWUSER = 0x10000000

# BPF opcodes.
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

# struct seccomp_data offsets.
_OFF_NR = 0
_OFF_ARCH = 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i  # little-endian: low word first


def _arg_hi(i: int) -> int:
    return 16 + 8 * i + 4


# ioctl numbers: _IOC(dir, '!', nr, size).
def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("!") << 8) | nr


_IOC_WRITE, _IOC_READ = 1, 2
NOTIF_SIZE = 80  # struct seccomp_notif
RESP_SIZE = 24  # struct seccomp_notif_resp
ADDFD_SIZE = 24  # struct seccomp_notif_addfd
IOCTL_NOTIF_RECV = _ioc(_IOC_READ | _IOC_WRITE, 0, NOTIF_SIZE)
IOCTL_NOTIF_SEND = _ioc(_IOC_READ | _IOC_WRITE, 1, RESP_SIZE)
IOCTL_NOTIF_ID_VALID = _ioc(_IOC_WRITE, 2, 8)
IOCTL_NOTIF_ID_VALID_OLD = _ioc(_IOC_READ, 2, 8)  # kernels before 5.17
IOCTL_NOTIF_ADDFD = _ioc(_IOC_WRITE, 3, ADDFD_SIZE)

# Syscalls refused outright (EPERM, audited as syscall_blocked).
BLOCKED = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_writev",
    "process_vm_readv",
    "pidfd_getfd",
    "mount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsmount",
    "fsconfig",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "setns",
    "open_by_handle_at",
)

# Syscalls decided by the supervisor (sendto only with a destination, below).
NOTIFY = (
    "open",
    "openat",
    "openat2",
    "creat",
    "truncate",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "execve",
    "execveat",
    "connect",
    "bind",
    "sendmsg",
    "sendmmsg",
)


@dataclass
class _Insn:
    code: int
    k: int
    jt: str | int = 0
    jf: str | int = 0


class _Asm:
    """Straight-line BPF with symbolic forward jumps, resolved at the end."""

    def __init__(self) -> None:
        self.prog: list[_Insn] = []
        self.labels: dict[str, int] = {}

    def emit(self, code: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        self.prog.append(_Insn(code, k, jt, jf))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.prog)

    def assemble(self) -> bytes:
        out = bytearray()
        for i, insn in enumerate(self.prog):
            jumps = []
            for j in (insn.jt, insn.jf):
                off = j if isinstance(j, int) else self.labels[j] - i - 1
                if not 0 <= off <= 255:
                    raise ValueError(f"BPF jump out of range at {i}: {off}")
                jumps.append(off)
            out += struct.pack("<HBBI", insn.code, jumps[0], jumps[1], insn.k)
        return bytes(out)


RET_TRACE = 0x7FF00000
CLONE_THREAD = 0x00010000
TIOCSTI = 0x5412
TIOCLINUX = 0x541C

# Signal delivery, decided so the supervisor and outsiders stay unreachable.
SIGNALS = (
    "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal",
)  # fmt: skip
# Process creation, counted against limits.max_processes.
PROCESS = ("fork", "vfork")


def build_filter(
    arch: Arch,
    blocked: Iterable[str] = BLOCKED,
    notify: Iterable[str] = NOTIFY + SIGNALS + PROCESS,
    decide: int = RET_USER_NOTIF,
) -> bytes:
    """The sandbox's one filter: arch check, then every syscall we decide or
    refuse goes to ``decide`` (the listener, or the tracer in ptrace mode),
    the rest is allowed.

    Refused syscalls go to the supervisor too, although it answers EPERM
    without asking the policy: a kernel-only EPERM would leave no trace, and
    an attempt to leave the sandbox is what the audit most needs to show.
    They are rare, so the round trip costs nothing in practice.
    """
    a = _Asm()
    a.emit(_LD_W_ABS, _OFF_ARCH)
    a.emit(_JEQ_K, arch.audit_arch, 0, "kill")
    a.emit(_LD_W_ABS, _OFF_NR)
    if arch.x32_bit is not None:
        a.emit(_JGE_K, arch.x32_bit, "kill", 0)
    for name in (*blocked, *notify):
        nr = arch.nr(name)
        if nr is not None:
            a.emit(_JEQ_K, nr, "decide", 0)
    # clone3 passes its flags in memory the filter cannot read: make libc fall
    # back to clone(2), whose flags we can check.
    clone3 = arch.nr("clone3")
    if clone3 is not None:
        a.emit(_JEQ_K, clone3, "enosys", 0)

    # Argument checks: each block either returns or, when the syscall number
    # does not match, falls through with the number still loaded.
    def block(name: str, arg: int, body: list[tuple[int, int, str | int, str | int]]) -> None:
        nr = arch.nr(name)
        if nr is None:
            return
        a.emit(_JEQ_K, nr, 0, f"after_{name}")
        a.emit(_LD_W_ABS, _arg_lo(arg))
        for code, k, jt, jf in body:
            a.emit(code, k, jt, jf)
        a.label(f"after_{name}")

    # personality(0xffffffff) only queries; anything else changes the ABI.
    block("personality", 0, [(_JEQ_K, 0xFFFFFFFF, "allow", "decide")])
    # New user namespaces are refused; threads need no decision, processes are counted.
    block(
        "clone",
        0,
        [(_JSET_K, CLONE_NEWUSER, "decide", 0), (_JSET_K, CLONE_THREAD, "allow", "decide")],
    )
    block("unshare", 0, [(_JSET_K, CLONE_NEWUSER, "decide", "allow")])
    # Typing into the terminal (TIOCSTI) would let a sandboxed program answer
    # an approval prompt or run commands in the user's shell.
    block("ioctl", 1, [(_JEQ_K, TIOCSTI, "decide", 0), (_JEQ_K, TIOCLINUX, "decide", "allow")])
    # sendto with no destination (a connected socket) needs no decision.
    sendto = arch.nr("sendto")
    if sendto is not None:
        a.emit(_JEQ_K, sendto, 0, "after_sendto")
        a.emit(_LD_W_ABS, _arg_lo(4))
        a.emit(_JEQ_K, 0, 0, "decide")
        a.emit(_LD_W_ABS, _arg_hi(4))
        a.emit(_JEQ_K, 0, "allow", "decide")
        a.label("after_sendto")
    a.label("allow")
    a.emit(_RET_K, RET_ALLOW)
    a.label("decide")
    a.emit(_RET_K, decide)
    a.label("enosys")
    a.emit(_RET_K, RET_ERRNO | errno.ENOSYS)
    a.label("kill")
    a.emit(_RET_K, RET_KILL_PROCESS)
    return a.assemble()


@dataclass
class Notif:
    id: int
    pid: int  # a thread id
    nr: int
    arch: int
    args: tuple[int, ...]


_NOTIF = struct.Struct("<QIIiIQ6Q")


def notif_recv(fd: int) -> Notif:
    """NOTIF_RECV into a zeroed buffer (the kernel requires it)."""
    buf = bytearray(NOTIF_SIZE)
    fcntl.ioctl(fd, IOCTL_NOTIF_RECV, buf, True)
    nid, pid, _flags, nr, arch_, _ip, *args = _NOTIF.unpack(buf)
    return Notif(nid, pid, nr, arch_, tuple(args))


def notif_send(fd: int, nid: int, *, error: int = 0, val: int = 0, cont: bool = False) -> bool:
    """Answer a notification. False when the id is gone (task interrupted or dead)."""
    flags = USER_NOTIF_FLAG_CONTINUE if cont else 0
    buf = struct.pack("<QqiI", nid, val, -error if error else 0, flags)
    try:
        fcntl.ioctl(fd, IOCTL_NOTIF_SEND, buf)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return False
        raise
    return True


_id_valid_req = [IOCTL_NOTIF_ID_VALID]


def notif_id_valid(fd: int, nid: int) -> bool:
    buf = struct.pack("<Q", nid)
    while True:
        try:
            fcntl.ioctl(fd, _id_valid_req[0], buf)
            return True
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            if e.errno == errno.ENOTTY and _id_valid_req[0] != IOCTL_NOTIF_ID_VALID_OLD:
                _id_valid_req[0] = IOCTL_NOTIF_ID_VALID_OLD
                continue
            raise


def notif_addfd(fd: int, nid: int, srcfd: int, *, cloexec: bool) -> int:
    """Install srcfd in the trapped task; return its number there. The
    caller then answers with it (notif_send val=...).

    Not ADDFD_FLAG_SEND, though it would save the task a wake-up: that flag
    marks the notification answered before the task has taken the fd, and
    when our wait is interrupted (a stop signal, the freezer, a debugger)
    before it has, the kernel withdraws the fd but leaves the answer
    standing, so the task's call returns 0, a wrong fd. Without the flag an
    interrupted ADDFD is either taken (its fd is returned) or withdrawn
    with the notification still unanswered, and is simply retried.

    The buffer must be mutable: with bytes, fcntl.ioctl returns the buffer,
    not the ioctl's result."""
    flags = 0o2000000 if cloexec else 0
    buf = bytearray(struct.pack("<QIIII", nid, 0, srcfd, 0, flags))
    while True:
        try:
            return int(fcntl.ioctl(fd, IOCTL_NOTIF_ADDFD, buf, True))
        except InterruptedError:
            continue


def sizes_ok() -> bool:
    """Check our struct sizes against SECCOMP_GET_NOTIF_SIZES."""
    from . import _syscall, arch

    nr = arch.current().nr("seccomp")
    assert nr is not None
    out = (ctypes.c_uint16 * 3)()
    _syscall.syscall(nr, 3, 0, ctypes.addressof(out), what="seccomp(GET_NOTIF_SIZES)")
    return out[0] <= NOTIF_SIZE and out[1] <= RESP_SIZE
