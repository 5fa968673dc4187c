"""A decoded trapped call and what was decided of it (shared by the notify
loop and ptrace mode)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import policy as pol

_DENY_ERRNO = {"connect": errno.ECONNREFUSED}
RANK = {"allow": 0, "audit": 1, "soft_delete": 1, "redirect": 2, "approve": 2, "deny": 3}


def worst(decisions: list[pol.Decision]) -> pol.Decision:
    """The strictest; of equals, one a rule made rather than a default (it
    says more in the audit)."""
    return max(decisions, key=lambda d: (RANK[d.decision], not d.rule.startswith("default:")))


class Unreadable(Exception):
    """An argument could not be read from the tracee: the call is denied."""


@dataclass
class Request:
    """One decoded trapped syscall, and what the policy said of it."""

    kind: str  # the audit type: file | exec | net | unix | signal | syscall_blocked
    op: str
    syscall: str
    pid: int
    tid: int
    decision: pol.Decision
    fields: dict[str, Any] = field(default_factory=dict)
    err: int | None = None  # errno of a denial, when not the kind's usual one
    quiet: bool = False  # allowed and recorded elsewhere (a fork: process_start)
    # Done by the supervisor instead of the kernel, at answer time (after the
    # notification is known valid): returns the result, a value or -errno.
    action: Callable[[], int] | None = None
    open_spec: tuple[str, int, int] | None = None  # (resolved path, flags, mode) to emulate
    open_at: tuple[str, int] | None = None  # openat2: (start directory, RESOLVE flags)
    open_via: Any = None  # an _onfd.FdCopy: reopen it (an fd's /proc magic link)
    sockaddr: bytes = b""  # the exact address bytes decided on
    pin: tuple[int, int] | None = None  # (st_dev, st_ino) a unix connect must still reach
    run_async: bool = False  # the action may block (a connect): run it off the loop

    @property
    def errno(self) -> int:
        if self.err is not None:
            return self.err
        if self.kind in ("net", "unix"):
            return _DENY_ERRNO.get(self.op, errno.EACCES)
        if self.kind in ("signal", "syscall_blocked"):
            return errno.EPERM
        return errno.EACCES


# An action's result meaning "let the kernel run the (modified) call".
CONTINUE = 1 << 62
BLOCKED_RULE = "seccomp-blocklist"
PROC_RULE = "proc-outside"
LIMIT_RULE = "limits.max_processes"
UNSERVED_RULE = "supervisor-unable"  # a request the supervisor could not carry out


def kind_of(syscall: str) -> str:
    """The audit type of a trapped syscall when its arguments are unknown."""
    if syscall.startswith("execve"):
        return "exec"
    if syscall in ("connect", "bind", "sendto", "sendmsg", "sendmmsg"):
        return "net"
    return "file"


def unreadable(syscall: str, tid: int, error: Exception) -> Request:
    """The denial of a call whose arguments could not be read or decoded."""
    denied = pol.Decision("deny", "unreadable-argument")
    return Request(
        kind_of(syscall), "unreadable", syscall, tid, tid, denied, {"reason": str(error)}
    )


def unserved(req: Request, error: BaseException) -> int:
    """Turn ``req`` into the denial of a call the supervisor could not carry
    out (no thread to run it on, a failure of its own) and return the errno
    to answer: a trapped call is answered, never left waiting."""
    err = error.errno if isinstance(error, OSError) and error.errno else errno.EAGAIN
    req.decision = pol.Decision(
        "deny", UNSERVED_RULE, f"the supervisor could not carry it out: {error}"
    )
    req.fields["result"] = errno.errorcode.get(err, str(err))
    req.err = err
    req.quiet = False
    return err
