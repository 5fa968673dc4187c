"""What a person reads first: a cell's denials, grouped, and its allowed
operations folded by kind and directory, with distinct counts.

Pure: works on the events only. The renderers turn a :class:`Digest` into
text and HTML.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ._events import Event
from ._summary import is_denial, successful_execs, target

# Decisions that let an operation through but that the policy wants seen:
# shown with the denials, not folded away.
_FLAGGED_DECISIONS: Final = frozenset({"audit", "redirect", "soft_delete"})
# Sandbox events a reader must see: the sandbox failing, or a protection opened.
_FLAGGED_SANDBOX_OPS: Final = frozenset({"error", "unprotect", "fallback", "refused"})
# How many directories (or programs, addresses) one folded row names.
FOLD_NAMES: Final = 6

DNS_NOTE: Final = 'a DNS lookup: the program may only say "could not resolve host"'


def is_flagged(event: Event) -> bool:
    """An operation that was let through but is shown with the denials: a
    policy ``audit``/``redirect``/``soft_delete`` decision, a granted
    approval, a sandbox error or an opened protection."""
    if is_denial(event):
        return False
    decision = str(event.get("decision") or "").lower()
    if decision in _FLAGGED_DECISIONS or event.get("approval") is not None:
        return True
    return event.get("type") == "sandbox" and event.get("op") in _FLAGGED_SANDBOX_OPS


def note_program(names: dict[int, str], event: Event) -> None:
    """Record in ``names`` (pid -> program) what ``event`` says a process runs."""
    pid = event.get("pid")
    if not isinstance(pid, int):
        return
    kind = event.get("type")
    started = kind == "process_start" and pid not in names
    if started or (kind == "exec" and not is_denial(event)):
        names[pid] = _program_name(event)


def programs(events: Sequence[Event], known: Mapping[int, str] | None = None) -> dict[int, str]:
    """pid -> the name of the program it runs last (its last exec, or the
    argv[0] it was started with); ``known``: names from earlier events (a
    process started in an earlier cell)."""
    names = dict(known or {})
    for event in events:
        note_program(names, event)
    return names


def _program_name(event: Event) -> str:
    argv = event.get("argv")
    if isinstance(argv, list) and argv:
        return posixpath.basename(str(argv[0])) or str(argv[0])
    path = event.get("path")
    return posixpath.basename(str(path)) if path else "?"


def _operation(event: Event) -> str:
    """What was done, in a word or two: ``read``, ``exec``, ``connect``,
    ``connect (unix)``, ``output``..."""
    kind = str(event.get("type") or "")
    op = str(event.get("op") or "")
    if kind == "syscall_blocked":
        return "syscall"
    if kind == "unix":
        return f"{op or 'use'} (unix socket)"
    if kind == "sandbox" and event.get("hidden_env") is not None:
        return "hide env"
    if kind == "exec":
        return "exec"
    if kind == "signal":
        return op or "signal"
    return op or kind


def _what(event: Event) -> str:
    if event.get("type") == "sandbox":
        hidden = event.get("hidden_env")
        if isinstance(hidden, list):
            return ", ".join(str(h) for h in hidden)
        if event.get("op") == "output" and event.get("mime"):
            return str(event["mime"])
        if event.get("target") is not None and event.get("op") == "suppressed":
            return str(event["target"])
        reason = event.get("reason")
        if reason is not None and event.get("path") is None and not event.get("argv"):
            return str(reason)
    return target(event)


def _why(event: Event) -> str:
    """The rule's message, or what a default rule means."""
    message = event.get("message")
    rule = str(event.get("rule") or "")
    if message is not None and str(message) != _what(event):
        text = str(message)
    elif rule.startswith("default:"):
        text = f"no rule matched: the policy's default for {rule[8:]} is deny"
    elif event.get("type") == "syscall_blocked":
        text = "a system call the sandbox never allows"
    else:
        text = ""
    approval = event.get("approval")
    if approval is not None:
        text = f"{text}; approval: {approval}" if text else f"approval: {approval}"
    if event.get("type") == "net" and event.get("port") == 53 and is_denial(event):
        text = f"{text} ({DNS_NOTE})" if text else DNS_NOTE
    return text


@dataclass
class Finding:
    """Denied or flagged operations alike (same operation, target, rule,
    reason), grouped."""

    denied: bool
    operation: str
    what: str
    rule: str
    why: str
    count: int = 0
    processes: list[str] = field(default_factory=list)  # "name (pid N)", first ones
    pids: set[int] = field(default_factory=set)
    first_seq: int | None = None

    def process_text(self, limit: int = 3) -> str:
        shown = self.processes[:limit]
        more = len(self.pids) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


@dataclass
class Fold:
    """One kind of allowed operation: how many distinct targets, and where."""

    kind: str  # "programs", "read", "written", "connections", ...
    distinct: int
    unit: str  # "files", "programs", "addresses"...
    events: int
    places: list[tuple[str, int]]  # (directory or name, distinct count), most first
    more: int  # places not named


@dataclass
class Digest:
    findings: list[Finding]
    folds: list[Fold]
    first_seq: int | None
    last_seq: int | None
    events: int


def _findings(events: Sequence[Event], names: dict[int, str]) -> list[Finding]:
    groups: dict[tuple[object, ...], Finding] = {}
    for event in events:
        denied = is_denial(event)
        if not denied and not is_flagged(event):
            continue
        count = 1
        shown = event
        if event.get("type") == "sandbox" and event.get("op") == "suppressed":
            # Repeats the supervisor counted instead of logging: they join
            # the group of the operation they repeat.
            shown = {**event, "type": event.get("of_type"), "op": event.get("of_op")}
            shown.pop("message", None)
            count = int(event.get("count") or 1)
        operation, what, rule, why = (
            _operation(shown),
            _what(shown),
            str(event.get("rule") or ""),
            _why(shown),
        )
        key = (denied, operation, what, rule, why)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Finding(denied, operation, what, rule, why)
            group.first_seq = event.get("seq")
        group.count += count
        pid = event.get("pid")
        if isinstance(pid, int) and pid not in group.pids:
            group.pids.add(pid)
            if len(group.processes) < 3:
                name = names.get(pid)
                group.processes.append(f"{name} (pid {pid})" if name else f"pid {pid}")
    # Denials first, then what was flagged; each in the order it happened.
    return sorted(groups.values(), key=lambda g: (not g.denied, g.first_seq or 0))


def _dir_places(paths: Counter[str]) -> list[tuple[str, int]]:
    """Distinct paths by directory (a directory holding one of them is named
    by that path itself), most first."""
    dirs: dict[str, set[str]] = {}
    for path in paths:
        dirs.setdefault(posixpath.dirname(path) or path, set()).add(path)
    places = []
    for directory, members in dirs.items():
        if len(members) == 1:
            places.append((next(iter(members)), 1))
        else:
            places.append((directory.rstrip("/") + "/", len(members)))
    return sorted(places, key=lambda p: (-p[1], p[0]))


def _fold(kind: str, unit: str, counts: Counter[str], places: list[tuple[str, int]]) -> Fold:
    return Fold(kind, len(counts), unit, sum(counts.values()), places[:FOLD_NAMES],
                max(0, len(places) - FOLD_NAMES))  # fmt: skip


def _folds(events: Sequence[Event]) -> list[Fold]:
    execs: Counter[str] = Counter()
    for event in successful_execs(events):
        execs[_program_name(event)] += 1
    read: Counter[str] = Counter()
    written: Counter[str] = Counter()
    connect: Counter[str] = Counter()
    unix: Counter[str] = Counter()
    other: dict[str, Counter[str]] = {}
    for event in events:
        if is_denial(event) or is_flagged(event) or event.get("decision") is None:
            continue
        kind, op = event.get("type"), event.get("op")
        if kind == "file":
            (read if op == "read" else written)[str(event.get("path"))] += 1
        elif kind == "net" and op in ("connect", "sendto"):
            connect[target(event)] += 1
        elif kind == "unix":
            unix[target(event)] += 1
        elif kind not in ("exec", "process_start", "process_exit"):
            other.setdefault(f"{kind} {op}" if op else str(kind), Counter())[target(event)] += 1
    folds = []
    if execs:
        # programs by how often they ran
        folds.append(_fold("programs", "programs", execs, execs.most_common()))
    if read:
        folds.append(_fold("read", "files", read, _dir_places(read)))
    if written:
        folds.append(_fold("written", "files", written, _dir_places(written)))
    if connect:
        folds.append(_fold("connections", "addresses", connect, connect.most_common()))
    if unix:
        folds.append(_fold("unix sockets", "sockets", unix, unix.most_common()))
    for name, counts in sorted(other.items()):
        folds.append(_fold(name, "targets", counts, counts.most_common()))
    return folds


def digest(events: Sequence[Event], known: Mapping[int, str] | None = None) -> Digest:
    """Group ``events`` for a reader: denials and flagged operations, then
    allowed ones folded by kind. ``known``: program names by pid from
    earlier events."""
    seqs = [e["seq"] for e in events if isinstance(e.get("seq"), int)]
    return Digest(
        findings=_findings(events, programs(events, known)),
        folds=_folds(events),
        first_seq=min(seqs) if seqs else None,
        last_seq=max(seqs) if seqs else None,
        events=len(events),
    )


def kept_events(events: Iterable[Event]) -> list[Event]:
    """The events a notebook keeps by default: the denied and flagged ones."""
    return [dict(e) for e in events if is_denial(e) or is_flagged(e)]
