"""ptrace mode: the degraded path for hosts without a usable seccomp listener.

The filter returns SECCOMP_RET_TRACE instead of USER_NOTIF for the same
syscalls, so only those stop (PTRACE_EVENT_SECCOMP, with TRACESECCOMP); the
tracer thread decodes them with the same Decoder, asks the same policy and
writes the same audit. A denial skips the syscall (number -1) with -errno as
its result. Without a tracer a RET_TRACE syscall fails with ENOSYS, so a
task that escaped the tracer fails closed.

What it cannot do that notify mode does: inject fds (opens are not
emulated; the kernel re-reads the path after an allow). Instead every task
sharing the caller's memory is held until the call has run, and a call
whose decided argument lies in a shared mapping is refused (_shared_mem).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import signal
import threading
from collections.abc import Callable

from .. import policy as pol
from .._linux import ptracer, syscalls
from .._linux.arch import Arch
from . import _shared_mem
from ._decoder import Decoder
from ._request import CONTINUE, Request, unreadable, unserved
from ._tracer import Tracer

# Calls whose path or address the kernel re-reads after the decision (exec is
# checked again at the exec event instead).
_REREAD = frozenset(
    name
    for name, entry in syscalls.CATALOG.items()
    if entry.kind is syscalls.Kind.DECIDED and entry.group in ("files", "network")
)


class PtraceDecider:
    def __init__(
        self,
        decoder: Decoder,
        arch: Arch,
        on_request: Callable[[Request], None],
        approve: Callable[[Request, Callable[[bool, str], None]], None],
    ) -> None:
        self.decoder = decoder
        self.arch = arch
        self.on_request = on_request
        self.approve = approve
        self._waiting = 0
        self._answers: collections.deque[tuple[ptracer.SyscallRegs, Request]]
        self._answers = collections.deque()
        self._lock = threading.Lock()
        self.handled = 0
        self.tracer: Tracer | None = None  # set by the session: it holds threads still
        # What each decision read of the tracee's memory, by tid: a call
        # left to the kernel must not read it from shared memory.
        self._reader = _shared_mem.RecordingReader()
        decoder.mem = self._reader
        self._read: dict[int, list[tuple[int, int]]] = {}

    def pending(self) -> bool:
        with self._lock:
            return self._waiting > 0

    def stopped(self, tid: int) -> None:
        try:
            regs = ptracer.SyscallRegs(tid)
        except OSError:
            return  # gone (killed) between the stop and now
        self.handled += 1
        name = self.arch.name_of(regs.nr)
        # The kernel reads a path or address again when the call runs: hold
        # every other thread of the process from before we read it until the
        # call has run, so none can change it in between.
        if self.tracer is not None and name in _REREAD:
            regs.held = self.tracer.hold_siblings(tid)
        self._reader.reset()
        try:
            req = self.decoder.decode(regs.nr, tid, regs.args, name)
        except Exception as e:  # any decoding failure must deny, never crash the tracer
            req = unreadable(name, tid, e)
        self._read[tid] = self._reader.ranges if name in _REREAD else []
        if req is None:
            req = Request("file", name, name, tid, tid, pol.Decision("allow", ""), quiet=True)
        if req.decision.decision == "approve":
            with self._lock:
                self._waiting += 1

            def answer(granted: bool, how: str) -> None:
                req.fields["approval"] = how
                req.decision = pol.Decision("allow" if granted else "deny", req.decision.rule)
                with self._lock:
                    self._answers.append((regs, req))

            self.approve(req, answer)
            return
        self._apply(regs, req)

    def apply_answers(self) -> None:
        while True:
            with self._lock:
                if not self._answers:
                    return
                regs, req = self._answers.popleft()
                self._waiting -= 1
            self._apply(regs, req)

    def _apply(self, regs: ptracer.SyscallRegs, req: Request) -> None:
        ranges = self._read.pop(regs.tid, [])
        try:
            if req.action is not None:
                try:
                    result = req.action()
                except OSError:
                    raise
                except Exception as e:  # a failure of ours: refuse, keep tracing
                    result = -unserved(req, e)
                if result != CONTINUE:
                    regs.skip(result)
                else:
                    self._unless_shared(regs, req, ranges)
            elif req.decision.decision not in ("allow", "audit"):
                regs.skip(-req.errno)
            else:
                self._unless_shared(regs, req, ranges)
            if regs.held and self.tracer is not None:
                self.tracer.finish_syscall(regs.tid)  # the held threads resume after it
                return self._done(req)
            ptracer.cont(regs.tid)
        except OSError as e:
            if e.errno != errno.ESRCH:
                # Could not refuse it: the call must not run. Kill the task.
                with contextlib.suppress(OSError):
                    os.kill(regs.tid, signal.SIGKILL)
            return
        self._done(req)

    def _unless_shared(
        self, regs: ptracer.SyscallRegs, req: Request, ranges: list[tuple[int, int]]
    ) -> None:
        """Refuse a call the kernel would run when what was decided lies in
        memory another process can write (see _shared_mem)."""
        try:
            mapping = _shared_mem.shared_mapping(regs.tid, ranges)
        except OSError as e:
            mapping = f"its memory map is unreadable: {e.strerror}"
        if mapping is None:
            return
        req.decision = pol.Decision(
            "deny", _shared_mem.RULE, "an argument lies in memory another process can write"
        )
        req.fields["mapping"] = mapping
        req.quiet = False
        regs.skip(-errno.EACCES)

    def _done(self, req: Request) -> None:
        if not req.quiet:
            self.on_request(req)
