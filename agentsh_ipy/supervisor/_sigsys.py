"""Refusals trapped by the filter (SECCOMP_RET_TRAP), answered by the tracer.

A call the catalog refuses whatever the policy says returns RET_TRAP from
our filter rather than USER_NOTIF or TRACE. The reason is a container:
its engine's filter is installed before ours, the kernel runs both and
keeps the strongest action (KILL > TRAP > ERRNO > USER_NOTIF > TRACE >
ALLOW), so a call the container answers ERRNO (Docker without
CAP_SYS_ADMIN: mount, unshare, open_by_handle_at, ...) would never reach a
listener and would leave no trace. TRAP outranks that ERRNO.

The kernel skips the call and raises SIGSYS; the tracer (seized on every
task in both modes) sees it as a signal-delivery stop. Here the call is
decoded by the same Decoder, so the event is the one a trapped refusal
always gave, its errno is written as the call's result, and the task is
resumed without the signal: the program sees only the errno.

A SIGSYS that is not ours (one the program sent itself, even one forging
si_code SYS_SECCOMP, or one of a container's own TRAP) is delivered as
usual. Without a tracer the SIGSYS kills the program (its default action)
or reaches its handler; the call never runs either way.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Callable

from .. import policy as pol
from .._linux import ptracer, syscalls
from .._linux.arch import Arch
from ._decoder import Decoder
from ._request import BLOCKED_RULE, Request, unreadable


class TrappedRefusals:
    """The tracer's handler of SIGSYS stops (``Tracer.on_sigsys``)."""

    def __init__(self, decoder: Decoder, arch: Arch, on_request: Callable[[Request], None]) -> None:
        self.decoder = decoder
        self.arch = arch
        self.on_request = on_request

    def __call__(self, tid: int) -> bool:
        """True when the stop was our refusal: answered, resumed, audited.
        False: deliver the signal as usual."""
        try:
            info = ptracer.getsiginfo(tid)
            regs = ptracer.TrapRegs(tid, self.arch.name)
        except OSError as e:
            if e.errno == errno.ESRCH:
                return True  # gone (killed) since it stopped: nothing to deliver
            raise
        nr = regs.nr
        name = self.arch.name_of(nr)
        entry = syscalls.CATALOG.get(name)
        if entry is not None and entry.action(regs.args) != syscalls.REFUSE:
            return False  # not a call our filter traps
        witness = regs.rolled_back()
        from_filter = (info.code, info.syscall & 0xFFFFFFFF, info.arch) == (
            ptracer.SYS_SECCOMP, nr, self.arch.audit_arch)  # fmt: skip
        if from_filter and witness is not False:
            deliver = 0
        elif witness:
            # The registers say the filter trapped this call, but the siginfo
            # is another SIGSYS, pending when it did (the kernel's merged into
            # it): answer the call and deliver the program's own signal.
            deliver = signal.SIGSYS
        else:
            return False  # the program's own SIGSYS, whatever si_code it claims
        try:
            req = self.decoder.decode(nr, tid, regs.args, name)
        except Exception as e:  # a decoding failure must still refuse, never crash the tracer
            req = unreadable(name, tid, e)
        if req is None or req.decision.decision != "deny":
            # The catalog refuses it whatever is decided (the kernel has
            # skipped it already): say so rather than record an allow.
            decided = req.decision.rule if req is not None else ""
            req = Request(
                "syscall_blocked", name, name, tid, tid,
                pol.Decision("deny", BLOCKED_RULE, f"trapped by the filter ({decided or 'none'})"),
                {"args": [hex(x) for x in regs.args[:3]]}, err=info.errno or errno.EPERM,
            )  # fmt: skip
        try:
            regs.set_result(-req.errno)
        except OSError as e:
            if e.errno != errno.ESRCH:
                # Could not answer: the program would see the syscall's
                # number as a result. End it rather than lie to it.
                with contextlib.suppress(OSError):
                    os.kill(tid, signal.SIGKILL)
            return True
        ptracer.cont(tid, deliver)
        self.on_request(req)
        return True
