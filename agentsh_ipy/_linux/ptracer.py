"""ptrace with event stops only: SEIZE, the fork/clone/exec/exit events.

The requests are one libc call each (<sys/ptrace.h> numbers, the same on
every architecture). python-ptrace supplies the register layout that ptrace
mode reads and writes; it is imported only there, since importing it runs
ldconfig in a subprocess (``find_library``) and costs every start ~10 ms.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass
from typing import Any

from . import _syscall
from ._syscall import libc

_ptrace = libc.ptrace
_ptrace.restype = ctypes.c_long
_ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]

PTRACE_CONT = 7
PTRACE_DETACH = 17
PTRACE_GETEVENTMSG = 0x4201
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208

O_TRACEFORK = 0x02
O_TRACEVFORK = 0x04
O_TRACECLONE = 0x08
O_TRACEEXEC = 0x10
O_TRACEEXIT = 0x40
O_TRACESYSGOOD = 0x01
O_TRACESECCOMP = 0x80
PTRACE_SYSCALL = 24
SYSCALL_STOP = 0x80 | 5  # WSTOPSIG of a syscall stop with TRACESYSGOOD (SIGTRAP|0x80)
O_EXITKILL = 1 << 20

EVENT_FORK = 1
EVENT_VFORK = 2
EVENT_CLONE = 3
EVENT_EXEC = 4
EVENT_EXIT = 6
EVENT_SECCOMP = 7
EVENT_STOP = 128

SEIZE_OPTIONS = O_TRACEFORK | O_TRACEVFORK | O_TRACECLONE | O_TRACEEXEC | O_TRACEEXIT | O_EXITKILL

WALL = 0x40000000  # __WALL: wait for threads and clone children too


def _request(req: int, pid: int, addr: int = 0, data: int = 0) -> int:
    # -1 is also a valid result of the PEEK requests, never used here.
    result = int(_ptrace(req, pid, addr, data))
    if result == -1:
        err = ctypes.get_errno() or errno.EIO
        raise OSError(err, f"ptrace({req:#x}, {pid}): {os.strerror(err)}")
    return result


def seize(pid: int, options: int = SEIZE_OPTIONS) -> None:
    _request(PTRACE_SEIZE, pid, 0, options)


def cont(pid: int, sig: int = 0) -> bool:
    """Resume a stopped tracee. False when it is already gone (ESRCH): a
    tracee that was killed or exited between its stop and our resume is
    not an error."""
    try:
        _request(PTRACE_CONT, pid, 0, sig)
        return True
    except OSError as e:
        if e.errno == errno.ESRCH:
            return False
        raise


def interrupt(pid: int) -> bool:
    try:
        _request(PTRACE_INTERRUPT, pid)
        return True
    except OSError as e:
        if e.errno == errno.ESRCH:
            return False
        raise


def syscall(pid: int) -> bool:
    """Resume until the next syscall stop (here: the current call's exit)."""
    try:
        _request(PTRACE_SYSCALL, pid)
        return True
    except OSError as e:
        if e.errno == errno.ESRCH:
            return False
        raise


def listen(pid: int) -> bool:
    try:
        _request(PTRACE_LISTEN, pid)
        return True
    except OSError as e:
        if e.errno == errno.ESRCH:
            return False
        raise


def geteventmsg(pid: int) -> int:
    msg = ctypes.c_ulong(0)
    _request(PTRACE_GETEVENTMSG, pid, 0, ctypes.addressof(msg))
    return msg.value


KCMP_VM = 1


def same_vm(pid1: int, pid2: int) -> bool:
    """Whether two tasks share their memory (kcmp KCMP_VM: a thread, or a
    clone(CLONE_VM) process such as a vfork child). Needs ptrace read access
    to both: the tracer has it. A task gone: False. OSError when kcmp itself
    is refused (a container profile may refuse it without CAP_SYS_PTRACE):
    the caller must not take that for "not shared"."""
    from .arch import current

    nr = current().nr("kcmp")
    if nr is None:
        raise OSError(errno.ENOSYS, "kcmp: not on this architecture")
    try:
        return _syscall.syscall(nr, pid1, pid2, KCMP_VM, 0, 0, what="kcmp") == 0
    except ProcessLookupError:
        return False


def event_of(status: int) -> int:
    """The PTRACE_EVENT_* of a stop status (0 for a signal stop)."""
    return (status >> 16) & 0xFF


class SyscallRegs:
    """A seccomp-stopped task's syscall number and arguments (x86_64), and a
    way to refuse the call: number -1 skips it, rax holds its result."""

    def __init__(self, tid: int) -> None:
        self.tid = tid
        self.regs = _regs_call("ptrace_getregs", tid)
        self.held: list[int] = []  # sibling threads held still around this call

    @property
    def nr(self) -> int:
        return int(self.regs.orig_rax) & 0xFFFFFFFF

    @property
    def args(self) -> tuple[int, ...]:
        r = self.regs
        return tuple(int(x) for x in (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9))

    def skip(self, result: int) -> None:
        """Skip the syscall; it returns ``result`` (a negative errno or a value)."""
        self.regs.orig_rax = (1 << 64) - 1
        self.regs.rax = result & ((1 << 64) - 1)
        _regs_call("ptrace_setregs", self.tid, self.regs)


def _regs_call(name: str, *args: Any) -> Any:
    """python-ptrace's PTRACE_GETREGS/SETREGS (with its user_regs_struct). Its
    PtraceError is not an OSError: raised again as one, with its errno, so
    callers can tell a task that is gone (ESRCH) from a failure."""
    from ptrace.binding import func
    from ptrace.error import PtraceError

    try:
        return getattr(func, name)(*args)
    except PtraceError as e:
        code = e.errno if isinstance(e.errno, int) else errno.EIO
        raise OSError(code, f"{name}({args[0]}): {os.strerror(code)}") from None


PTRACE_GETSIGINFO = 0x4202
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
NT_PRSTATUS = 1
SYS_SECCOMP = 1  # si_code of a SIGSYS raised by SECCOMP_RET_TRAP

# struct siginfo: signo, errno, code (ints), then for SIGSYS _call_addr (skipped),
# _syscall, _arch (the same layout on x86_64 and aarch64).
_SIGINFO = struct.Struct("<iii4x8xiI")


@dataclass(frozen=True)
class SigInfo:
    signo: int
    errno: int  # for a seccomp SIGSYS: the filter's SECCOMP_RET_DATA
    code: int
    syscall: int
    arch: int


def getsiginfo(pid: int) -> SigInfo:
    """The siginfo of a tracee in a signal-delivery stop."""
    buf = ctypes.create_string_buffer(128)
    _request(PTRACE_GETSIGINFO, pid, 0, ctypes.addressof(buf))
    return SigInfo(*_SIGINFO.unpack_from(buf.raw))


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


# Where NT_PRSTATUS keeps, by 8-byte word: the six arguments, the syscall
# number, the return value, and the register that also held the number on
# entry (x86_64: user_regs_struct, rax is reset to orig_rax when SECCOMP_RET_TRAP
# rolls the call back; aarch64: user_pt_regs, x8 holds the number and x0 the
# first argument again, so there is no such second witness).
_LAYOUT = {
    "x86_64": (27, (14, 13, 12, 7, 9, 8), 15, 10, 10),
    "aarch64": (34, (0, 1, 2, 3, 4, 5), 8, 0, 8),
}


class TrapRegs:
    """The registers of a task stopped for the SIGSYS of SECCOMP_RET_TRAP:
    the call the kernel refused (it has been skipped) and its arguments, and
    a way to set what the call returns. PTRACE_GETREGSET, so no per-arch
    library is needed."""

    def __init__(self, tid: int, machine: str) -> None:
        self.tid = tid
        words, self._args, self._nr, self._ret, self._witness = _LAYOUT[machine]
        self._buf = (ctypes.c_uint64 * words)()
        self._io = _Iovec(ctypes.addressof(self._buf), ctypes.sizeof(self._buf))
        _request(PTRACE_GETREGSET, tid, NT_PRSTATUS, ctypes.addressof(self._io))

    @property
    def nr(self) -> int:
        return int(self._buf[self._nr]) & 0xFFFFFFFF

    @property
    def args(self) -> tuple[int, ...]:
        return tuple(int(self._buf[i]) for i in self._args)

    def rolled_back(self) -> bool | None:
        """Whether the registers are those of a call the filter trapped: on
        x86_64 the return register holds the call's number again (the
        kernel's rollback), which no call that ran leaves there for a number
        the filter refuses; -1 there is no call at all. None: this
        architecture keeps no such witness (aarch64)."""
        if self._witness == self._nr:
            return None
        full = int(self._buf[self._nr])
        return full != (1 << 64) - 1 and int(self._buf[self._witness]) == full

    def set_result(self, value: int) -> None:
        """What the skipped call returns (a negative errno)."""
        self._buf[self._ret] = value & 0xFFFFFFFFFFFFFFFF
        _request(PTRACE_SETREGSET, self.tid, NT_PRSTATUS, ctypes.addressof(self._io))


def ptrace_mode_supported() -> bool:
    """Deciding by RET_TRACE needs the register layout: x86_64 here."""
    return os.uname().machine == "x86_64"
