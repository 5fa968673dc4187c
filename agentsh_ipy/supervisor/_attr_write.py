"""A write open of /proc/PID/attr/* in notify mode (issue 17, the rest of
item 7).

An LSM attribute is written only by the task that opened the file, with
the memory it had then (the kernel checks both at write time), so the
supervisor cannot open it on the caller's behalf and inject the fd: the
open continues in the kernel, which reads the path again. That is safe
only where nobody can change the path in between: the caller, waiting in
the call, is the only task using its memory (one thread; no process made
with clone(CLONE_VM) shares it: kcmp says so, and where kcmp is refused
that counts as shared) and it has no shared writable mapping another
process could write the path into. Anything else is refused (EACCES, rule
``shared-memory-argument``, the event says why). Since the caller waits,
no new sharer can appear: only a task using the memory could make one.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable

from .. import policy as pol
from .._linux import ptracer
from . import _shared_mem
from ._request import Request


def _sharer(pid: int, tid: int, members: Iterable[int]) -> str:
    """Why another task could write the caller's memory; "" when none can."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError as e:
        return f"its threads cannot be listed ({e.strerror})"
    if threads != [str(tid)]:
        return "another thread shares its memory"
    for other in members:
        if other == pid:
            continue
        try:
            if ptracer.same_vm(tid, other):
                return f"process {other} shares its memory (clone with CLONE_VM)"
        except OSError as e:
            return f"kcmp cannot tell who shares its memory ({e.strerror})"
    try:
        with open(f"/proc/{tid}/maps", encoding="utf-8", errors="replace") as f:
            for line in f:
                perms = line.split(maxsplit=2)[1] if " " in line else ""
                if perms.startswith("rw") and perms[3:4] == "s":
                    return "it has a shared writable mapping: " + line.strip()
    except OSError as e:
        return f"its mappings cannot be read ({e.strerror})"
    return ""


def unless_alone(req: Request, pid: int, tid: int, members: Iterable[int]) -> None:
    """Deny ``req`` (an allowed write open of an attr file, to be continued)
    unless the caller alone can write the path it passed."""
    if req.decision.decision not in ("allow", "audit"):
        return
    why = _sharer(pid, tid, members)
    if not why:
        return
    req.decision = pol.Decision(
        "deny", _shared_mem.RULE, f"an LSM attribute write continues in the kernel, and {why}"
    )
    req.err = errno.EACCES
