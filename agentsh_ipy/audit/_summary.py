"""Classifying events and summarizing a cell's audit."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ._events import Event

# Answers in the "approval" field that mean a human allowed the operation. Any
# other answer (denied, timeout, no one to ask, absent) is a denial: the design
# says approve falls back to deny.
_GRANTED: Final = frozenset({"approved", "granted", "allow", "allowed", "yes"})

_CONNECT_OPS: Final = frozenset({"connect", "sendto"})


def _decision(event: Event) -> str:
    decision = event.get("decision")
    return decision.lower() if isinstance(decision, str) else ""


def _approval_granted(event: Event) -> bool:
    approval = event.get("approval")
    if approval is True:
        return True
    return isinstance(approval, str) and approval.lower() in _GRANTED


def is_denial(event: Event) -> bool:
    """True for an operation the sandbox refused.

    That is: any ``syscall_blocked`` event, any event with decision ``deny``,
    and an ``approve`` decision whose ``approval`` was not granted.
    """
    if event.get("type") == "syscall_blocked":
        return True
    decision = _decision(event)
    if decision == "deny":
        return True
    return decision == "approve" and not _approval_granted(event)


def _format_addr(addr: object, port: object) -> str:
    host = str(addr)
    if port is None:
        return host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6: brackets keep the port readable
    return f"{host}:{port}"


def _format_argv(argv: object) -> str:
    if isinstance(argv, list | tuple):
        # shlex.join quotes only arguments that need it, so `rm "a b"` and
        # `rm a b` stay distinguishable in the audit.
        return shlex.join(str(arg) for arg in argv)
    return str(argv)


def target(event: Event) -> str:
    """What an event was about, as one line of text (not escaped).

    The argv for ``exec``/``process_start`` (falling back to the path), the
    ``path`` for others, ``addr:port`` (``[addr]:port`` for IPv6), ``exit N``
    or ``signal N`` for ``process_exit``, ``signal N`` for signals, the
    ``syscall`` name for ``syscall_blocked``, else a ``message`` field, else "".
    """
    kind = event.get("type")
    argv = event.get("argv")
    path = event.get("path")
    if kind in ("exec", "process_start") and argv:
        return _format_argv(argv)
    if path is not None:
        return str(path)
    if argv:
        return _format_argv(argv)
    if event.get("addr") is not None:
        return _format_addr(event["addr"], event.get("port"))
    if kind == "process_exit":
        if event.get("signal") is not None:
            return f"signal {event['signal']}"
        if event.get("exit_code") is not None:
            return f"exit {event['exit_code']}"
    if event.get("signal") is not None:
        return f"signal {event['signal']}"
    for key in ("syscall", "message"):
        if event.get(key) is not None:
            return str(event[key])
    return ""


def successful_execs(events: Sequence[Event]) -> list[Event]:
    """The exec events that started a program: not denied, and not a PATH
    probe. A shell or execvp tries each PATH entry in turn, and each try is
    an exec event; the tries that failed are followed by another exec of the
    same argv by the same process, so of such a run only the last counts."""
    out: list[Event] = []
    last_by_pid: dict[object, int] = {}  # pid -> index in out of its latest exec
    for event in events:
        if event.get("type") != "exec" or is_denial(event) or event.get("errno"):
            continue
        pid = event.get("pid")
        i = last_by_pid.get(pid)
        if i is not None and pid is not None and out[i].get("argv") == event.get("argv"):
            out[i] = event  # the earlier one was a probe that failed
            continue
        last_by_pid[pid] = len(out)
        out.append(event)
    return out


def _is_connection(event: Event) -> bool:
    return event.get("type") == "net" and event.get("op") in _CONNECT_OPS


@dataclass(frozen=True)
class Summary:
    """Counts for one cell's (or one run's) audit. Files are counted once
    each, however often they were opened."""

    processes: int = 0
    """process_start events."""
    execs: int = 0
    """programs started: exec events not denied, PATH probes not counted."""
    files_read: int = 0
    """distinct files read (not denied)."""
    files_written: int = 0
    """distinct files written, created, renamed, deleted... (not denied)."""
    connections: int = 0
    """network connections attempted (connect, sendto with an address),
    allowed and denied, DNS lookups included; unix sockets are not counted."""
    connections_denied: int = 0
    """... of which denied."""
    denials: int = 0
    """events for which is_denial() holds (deny decisions, syscall_blocked, refused approvals)."""
    approvals: int = 0
    """events that went through a human approval (have an "approval" field)."""
    dropped: int = 0
    """events that the store could not keep."""
    events: int = 0
    """events counted (the dropped ones are not)."""


def summarize(events: Sequence[Event], dropped: int = 0) -> Summary:
    """Count ``events``. Every non-denied access is counted, whatever its decision
    (allow, audit, or none recorded): the summary must not under-report what happened."""
    processes = connections = connections_denied = denials = approvals = 0
    read: set[object] = set()
    written: set[object] = set()
    for event in events:
        kind = event.get("type")
        denied = is_denial(event)
        if event.get("approval") is not None:
            approvals += 1
        if denied:
            denials += 1
        if _is_connection(event):
            connections += 1
            connections_denied += denied
        if kind == "process_start":
            processes += 1
        elif denied:
            continue
        elif kind == "file":
            (read if event.get("op") == "read" else written).add(event.get("path"))
    return Summary(
        processes=processes,
        execs=len(successful_execs(events)),
        files_read=len(read),
        files_written=len(written),
        connections=connections,
        connections_denied=connections_denied,
        denials=denials,
        approvals=approvals,
        dropped=dropped,
        events=len(events),
    )


def _count(n: int, singular: str, plural: str) -> str:
    return f"{n} {singular if n == 1 else plural}"


def summary_parts(s: Summary) -> list[tuple[str, bool]]:
    """The pieces of :func:`summary_line` as ``(text, alarming)`` pairs; renderers
    emphasize the alarming ones (denials, dropped events)."""
    parts = [(f"{s.denials} DENIED", True) if s.denials else ("nothing denied", False)]
    if s.dropped:
        parts.append((_count(s.dropped, "event", "events") + " DROPPED (audit store full)", True))
    if s.processes > s.execs:  # forks that ran no new program
        parts.append((_count(s.processes, "process", "processes"), False))
    connections = _count(s.connections, "connection", "connections")
    if s.connections_denied:
        connections += f" ({s.connections_denied} denied)"
    parts += [
        (_count(s.execs, "program started", "programs started"), False),
        (_count(s.files_read, "file read", "files read"), False),
        (f"{s.files_written} written", False),
        (connections, False),
    ]
    if s.approvals:
        parts.append((_count(s.approvals, "approval", "approvals"), False))
    return parts


def summary_line(s: Summary) -> str:
    """One line, denials first, e.g. ``agentsh: 2 DENIED · 2 programs
    started · 14 files read · 1 written · 0 connections``. Denials and
    dropped events are in capitals only when there are some, so they stand
    out; approvals are mentioned only when nonzero."""
    return "agentsh: " + " · ".join(text for text, _ in summary_parts(s))
