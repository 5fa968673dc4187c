"""seccomp: a small BPF assembler for our filter, and the user-notify ioctls.

The filter is built here (in the supervisor) and handed to the wrapper as
bytes, so the wrapper needs no syscall tables and stays stdlib-only.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from . import syscalls
from .arch import Arch

# Filter return actions (linux/seccomp.h).
RET_KILL_PROCESS = 0x80000000
RET_TRAP = 0x00030000  # SIGSYS, si_errno = the low 16 bits (our errno)
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_ALLOW = 0x7FFF0000

FILTER_FLAG_NEW_LISTENER = 1 << 3
FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5
USER_NOTIF_FLAG_CONTINUE = 1
ADDFD_FLAG_SETFD = 1

# BPF opcodes.
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K
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


@dataclass
class _Insn:
    code: int
    k: int | str
    jt: str | int = 0
    jf: str | int = 0


class _Asm:
    """Straight-line BPF with symbolic forward jumps, resolved at the end."""

    def __init__(self) -> None:
        self.prog: list[_Insn] = []
        self.labels: dict[str, int] = {}

    def emit(self, code: int, k: int | str, jt: str | int = 0, jf: str | int = 0) -> None:
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
            k = insn.k
            if isinstance(k, str):  # BPF_JA to a label
                k = self.labels[k] - i - 1
            out += struct.pack("<HBBI", insn.code, jumps[0], jumps[1], k)
        return bytes(out)


RET_TRACE = 0x7FF00000
_JGT_K = 0x25
_JA = 0x05  # BPF_JMP | BPF_JA: k is the offset (32 bits), jt and jf unused

# The hottest argument-checked calls first: every one not cached as
# "always allow" walks the blocks in this order.
_FIRST = ("ioctl", "madvise", "sendto", "clone", "prlimit64")


def build_filter(
    arch: Arch,
    decide: int = RET_USER_NOTIF,
    catalog: Mapping[str, syscalls.Syscall] = syscalls.CATALOG,
    overrides: Mapping[str, int] | None = None,
) -> bytes:
    """The sandbox's one filter, compiled from the syscall catalog: the arch
    check, then an allowlist. ``decide`` (the listener, or the tracer in
    ptrace mode) gets every call the catalog decides or refuses and every
    number it does not know; the kernel answers the harmless ones alone.

    Refused syscalls reach the supervisor too, although it answers without
    asking the policy: a kernel-only EPERM would leave no trace, and an
    attempt to leave the sandbox is what the audit most needs to show. They
    return RET_TRAP with their errno as data, not ``decide``: a container's
    filter (installed before ours) answering ERRNO would outrank USER_NOTIF
    and TRACE and no event would be written; TRAP outranks ERRNO, and the
    tracer (on every task in both modes) audits and answers the SIGSYS.

    Layout: calls allowed whatever their arguments are tested last, as
    ranges of numbers, and only the syscall number is ever loaded on their
    way: the kernel's action cache (5.11+) then proves them constant and
    skips the filter for them entirely. Argument-checked calls come before,
    each in a block that returns.

    ``overrides``: syscall name -> the action that replaces ``decide`` for
    that call (notify mode without pidfd_getfd traces the socket calls).
    """
    overrides = overrides or {}
    entries: dict[int, syscalls.Syscall] = {}
    for name, entry in catalog.items():
        nr = arch.nr(name)
        if nr is not None:
            entries.setdefault(nr, entry)
    a = _Asm()
    a.emit(_LD_W_ABS, _OFF_ARCH)
    a.emit(_JEQ_K, arch.audit_arch, 1, 0)
    a.emit(_RET_K, RET_KILL_PROCESS)
    a.emit(_LD_W_ABS, _OFF_NR)
    if arch.x32_bit is not None:
        a.emit(_JGE_K, arch.x32_bit, 0, 1)
        a.emit(_RET_K, RET_KILL_PROCESS)
    for nr, entry in sorted(entries.items()):
        if entry.filter_errno is not None:  # clone3: ENOSYS, so libc uses clone
            a.emit(_JEQ_K, nr, 0, 1)
            a.emit(_RET_K, RET_ERRNO | entry.filter_errno)
        elif entry.name in overrides and not entry.rules:
            a.emit(_JEQ_K, nr, 0, 1)
            a.emit(_RET_K, overrides[entry.name])
    checked = [(nr, e) for nr, e in entries.items() if e.rules and e.filter_errno is None]
    rank = {name: i for i, name in enumerate(_FIRST)}
    checked.sort(key=lambda ne: (rank.get(ne[1].name, len(rank)), ne[0]))
    for nr, entry in checked:
        _block(a, nr, entry, overrides.get(entry.name, decide))
    # Every other number, in runs sharing one answer, walked in order: a
    # number above a run's last goes on to the next. A number a block above
    # answered joins whichever run it falls in.
    unknown = RET_TRAP | syscalls.UNKNOWN_ERRNO
    runs: list[list[int]] = []  # [last number, answer]
    for nr in range(max(entries, default=-1) + 1):
        e = entries.get(nr)
        if e is not None and (e.rules or e.filter_errno is not None):
            continue
        ret = unknown if e is None else _ret(e, e.action((0,) * 6), None, decide)
        if runs and runs[-1][1] == ret:
            runs[-1][0] = nr
        else:
            runs.append([nr, ret])
    if runs and runs[-1][1] == unknown:
        runs.pop()  # the default below
    for hi, ret in runs:
        a.emit(_JGT_K, hi, 1, 0)
        a.emit(_RET_K, ret)
    a.emit(_RET_K, unknown)
    return a.assemble()


def _ret(entry: syscalls.Syscall, action: str, rule: syscalls.Rule | None, decide: int) -> int:
    """The filter's return for ``action``: a refusal traps with its errno."""
    if action == syscalls.ALLOW:
        return RET_ALLOW
    if action == syscalls.REFUSE:
        return RET_TRAP | entry.refusal_errno(rule)
    return decide


def _block(a: _Asm, nr: int, entry: syscalls.Syscall, decide: int) -> None:
    """One argument-checked syscall: its rules in order, each a run of tests
    that falls to the next rule on the first that fails; then its
    ``otherwise``. Entered only with its number loaded; always returns.

    A rule's last test returns from right after it, so no jump grows with
    the number of rules (an allowlist of ioctl requests has a hundred), and
    the block is skipped with BPF_JA, whose offset has 32 bits. A rule that
    tests the word the rule before it tested alone does not load it again:
    on that rule's failure the accumulator still holds it."""
    p = f"{entry.name}:"
    a.emit(_JEQ_K, nr, 1, 0)
    a.emit(_JA, p + "after")
    held: int | None = None  # the offset whose word the accumulator holds, unmasked
    for i, rule in enumerate(entry.rules):
        fail = f"{p}rule{i + 1}"
        words: list[tuple[int, int | None, int, int]] = []  # (offset, mask, opcode, k)
        for t in rule.tests:
            if t.op == "masked":
                assert not t.wide, "a masked test reads the low word"
                words.append((_arg_lo(t.arg), t.mask & 0xFFFFFFFF, _JEQ_K, t.value))
                continue
            op = _JEQ_K if t.op == "eq" else _JSET_K
            words.append((_arg_lo(t.arg), None, op, t.value & 0xFFFFFFFF))
            if t.wide:
                assert t.op == "eq", "a wide test compares equal"
                words.append((_arg_hi(t.arg), None, _JEQ_K, t.value >> 32))
        for j, (offset, mask, op, k) in enumerate(words):
            if not (j == 0 and mask is None and offset == held):
                a.emit(_LD_W_ABS, offset)
            if mask is not None:
                a.emit(_AND_K, mask)
            if j < len(words) - 1:
                a.emit(op, k, 0, fail)
            else:
                a.emit(op, k, 0, 1)
                a.emit(_RET_K, _ret(entry, rule.action, rule, decide))
        a.label(fail)
        single = len(words) == 1 and words[0][1] is None
        held = words[0][0] if single else None
    a.emit(_RET_K, _ret(entry, entry.otherwise, None, decide))
    a.label(p + "after")


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
