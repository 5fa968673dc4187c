"""What one sandboxed process tree reports: its requests, execs and
repeated denials, as audit events (shared by the one-command Session and
the notebook daemon's launches)."""

from __future__ import annotations

import errno
import os
import threading
from typing import Any

from .. import audit as aud
from .. import policy as pol
from ._exec_identity import for_policy as exec_identity_for
from ._request import Request, worst
from ._tracer import ProcessTable


class TreeAudit:
    """Audit of one process tree. ``tags`` go into every event (a
    notebook's cell, cell id and launch id)."""

    def __init__(self, policy: pol.Policy, log: aud.AuditLog, **tags: Any) -> None:
        self.policy = policy
        self.log = log
        self.tags = tags
        self.table = ProcessTable()
        self._exec_denied: dict[int, Request] = {}
        self._repeats: dict[tuple[Any, ...], int] = {}
        self._repeats_lock = threading.Lock()

    def _emit(self, type: str, **fields: Any) -> None:
        self.log.emit(type, **self.tags, **fields)

    def _emit_unprotected(self) -> None:
        """Each protected entry the policy opened (``unprotect``), named at
        the start with the policy's reason: flagged, never silent."""
        reasons = {u.name: u.reason for u in self.policy.unprotect}
        for e in self.policy.opened:
            self._emit("sandbox", op="unprotect", decision="audit", rule=f"unprotect:{e.name}",
                       message=reasons.get(e.name, ""), paths=list(e.paths))  # fmt: skip

    # A program looping on a denied call (a fork bomb at its limit) would
    # flood the audit: after the first few, identical denials are counted and
    # reported as one "suppressed" event per kind at the end. Nothing is lost.
    _REPEATS_SHOWN = 20

    def _repeated(self, req: Request) -> bool:
        if req.decision.decision != "deny":
            return False
        # Each destination counts on its own: a refusal names its address.
        dest = (req.fields.get("addr"), req.fields.get("port"))
        key = (req.pid, req.kind, req.op, req.decision.rule,
               req.fields.get("path"), req.fields.get("target"), dest)  # fmt: skip
        with self._repeats_lock:  # the notify, approval and network threads all report
            n = self._repeats.get(key, 0) + 1
            self._repeats[key] = n
        return n > self._REPEATS_SHOWN

    def _flush_suppressed(self) -> None:
        for (pid, kind, op, rule, path, target, (addr, port)), n in self._repeats.items():
            if n > self._REPEATS_SHOWN:
                where = {"addr": addr, "port": port} if addr is not None else {}
                self._emit("sandbox", op="suppressed", pid=pid, decision="deny", rule=rule,
                           count=n - self._REPEATS_SHOWN, of_type=kind, of_op=op,
                           path=path, target=target, **where)  # fmt: skip

    def _on_request(self, req: Request) -> None:
        if self._repeated(req):
            return
        d = req.decision
        try:
            _, ppid = self.table.tgid_ppid(req.pid)
        except OSError:  # already gone
            ppid = None
        fields: dict[str, Any] = dict(req.fields)
        if req.tid != req.pid:
            fields["tid"] = req.tid
        denied = d.decision == "deny"
        if denied:
            fields["errno"] = errno.errorcode.get(req.errno, str(req.errno))
            if req.kind == "exec":
                self._exec_denied[req.pid] = req
        if d.message:
            fields["message"] = d.message
        self._emit(
            req.kind,
            op=req.op,
            pid=req.pid,
            ppid=ppid,
            syscall=req.syscall,
            decision=d.decision,
            rule=d.rule,
            **fields,
        )

    def _check_exec(self, pid: int, argv: list[str]) -> bool:
        """The command rules again, on the binary the kernel loaded and the
        argv it copied: a thread that changed the path or the arguments
        after the decision is caught here, before the image runs."""
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return True  # already gone
        # By name, then by what the file is (a copy, ld.so's program, no file).
        found = exec_identity_for(self.policy).at_exec(pid, argv)
        d = worst([self.policy.check_command(exe, argv), *found.decisions])
        if d.decision != "deny":
            return True
        self._emit(
            "exec", op="exec", pid=pid, path=exe, argv=argv, decision="deny", rule=d.rule,
            enforced="exec_event", checked="at exec", **found.fields,
            message="killed before it ran: denied on the loaded binary",
        )  # fmt: skip
        return False
