"""The three representations of the per-cell audit display.

What a person reads first: the summary line, then every denied or flagged
operation (grouped when repeated, with the rule and its message, and the
process), then the allowed operations folded by kind and directory behind
``<details>``, then where the full list is (the JSON Lines log) or, with
``detail``, the full list itself, folded too. ``text/plain`` says the same
in fixed-width lines; ``text/html`` is plain HTML (tables, ``<details>``, no
script, no classes) that reads the same in JupyterLab, Notebook 7,
nbconvert and GitHub; ``application/vnd.agentsh.audit+json`` is the data.

Everything shown comes from the sandboxed side (file names, argv), so it is
hostile input: control and format characters are made visible before display
(a newline or an ANSI escape in a file name could forge table rows in a
terminal, a U+202E could reverse how a name reads), and HTML is escaped.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from ._digest import Digest, Finding, Fold, digest, kept_events
from ._events import Cell, Event
from ._summary import Summary, is_denial, summarize, summary_line, summary_parts, target

AUDIT_MIME: Final = "application/vnd.agentsh.audit+json"
AUDIT_JSON_VERSION: Final = 2
TARGET_WIDTH: Final = 60
# A denied target longer than this is elided in its middle (the whole value
# is in the HTML title attribute and in the JSON).
WHAT_WIDTH: Final = 64
# Findings shown; the rest are counted (they are all in the JSON and the log).
MAX_FINDINGS: Final = 30
_TIMES: Final = "\u00d7"  # the multiplication sign: 3 times the same

_COLUMNS: Final = ("seq", "type", "op", "pid", "target", "decision", "rule")
# Cc: controls (newline, ESC); Cf: format (bidi overrides, zero-width);
# Zl/Zp: line and paragraph separators; Cs: lone surrogates.
_INVISIBLE: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _visible(text: str) -> str:
    """Replace control/format characters with a visible escape (``\\x1b``, ``\\u202e``)."""
    if text.isprintable():  # fast path; isprintable() is False for all of the above
        return text
    out = []
    for ch in text:
        if unicodedata.category(ch) in _INVISIBLE:
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _width(text: str) -> int:
    """Columns ``text`` takes in a monospace font (wide CJK characters count twice)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def _truncate(text: str, width: int = TARGET_WIDTH) -> str:
    if _width(text) <= width:
        return text
    used = 0
    out = []
    for ch in text:
        w = _char_width(ch)
        if used + w > width - 1:  # keep one column for the ellipsis
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _decision_label(event: Event) -> str:
    decision = event.get("decision")
    label = "" if decision is None else str(decision)
    approval = event.get("approval")
    if is_denial(event):
        if label.lower() == "approve":
            # The effective decision of a refused approval is deny; say so.
            label = f"deny (approval {'none' if approval is None else approval})"
        elif not label:
            label = "blocked" if event.get("type") == "syscall_blocked" else "deny"
        elif approval is not None:
            label = f"{label} (approval {approval})"
        return _visible(label.upper())
    if approval is not None:
        label = f"{label} (approval {approval})" if label else f"approval {approval}"
    return _visible(label)


def _str(value: object) -> str:
    return "" if value is None else _visible(str(value))


def _row(event: Event) -> tuple[str, ...]:
    """The table cells for one event (visible text, target truncated, not HTML-escaped)."""
    return (
        _str(event.get("seq")),
        _str(event.get("type")),
        _str(event.get("op")),
        _str(event.get("pid")),
        _truncate(_visible(target(event))),
        _decision_label(event),
        _str(event.get("rule")),
    )


def _elide(text: str, width: int = WHAT_WIDTH) -> str:
    """``text`` shortened in its middle to ``width`` columns (a path keeps
    its start and its file name)."""
    if _width(text) <= width:
        return text
    keep = width - 1
    head = _truncate(text, keep // 2 + 1)[:-1]
    tail_budget = keep - _width(head)
    tail: list[str] = []
    used = 0
    for ch in reversed(text):
        w = _char_width(ch)
        if used + w > tail_budget:
            break
        tail.append(ch)
        used += w
    return head + "…" + "".join(reversed(tail))


@dataclass(frozen=True)
class LogRef:
    """Where a cell's full events are: the JSON Lines log, and the cell."""

    path: str | None = None
    cell_id: str | None = None
    also: str | None = None  # another way to see them, e.g. ``%agentsh audit 3``
    # pid -> program, from events before these (a process an earlier cell started)
    programs: Mapping[int, str] | None = field(default=None, compare=False, repr=False)


def _reference(d: Digest, cell: Cell, log: LogRef | None) -> str:
    """One line: which cell, how many events and their ``seq`` range, and the
    command that prints them from the JSON Lines log."""
    if not d.events:
        return ""
    name = "" if cell is None else f"cell {cell}"
    if log is not None and log.cell_id:
        name += f" (id {log.cell_id})"
    text = f"{name}: " if name else ""
    text += f"{d.events} event{'s' if d.events != 1 else ''}"
    if d.first_seq is not None:
        text += f", seq {d.first_seq}-{d.last_seq}"
    if log is not None and log.path:
        selector = f" --cell {cell}" if cell is not None else ""
        text += f"; all of them: agentsh-ipy audit {log.path}{selector}"
    if log is not None and log.also:
        text += f" (or {log.also})"
    return text


def _finding_text(f: Finding) -> str:
    times = f"{f.count}{_TIMES} " if f.count > 1 else ""
    mark = "!" if f.denied else "~"
    parts = [f"{mark} {times}{f.operation} {_visible(_elide(f.what))}".rstrip()]
    if f.rule or f.why:
        rule = f"[{_visible(f.rule)}] " if f.rule else ""
        parts.append(f"{rule}{_visible(f.why)}".rstrip())
    if f.pids:
        parts.append(_visible(f.process_text()))
    return "  " + " — ".join(parts)


def _fold_places(fold: Fold) -> list[str]:
    """Each place with its count: ``/usr/lib/ (13)``, ``bash \u00d73`` for programs."""
    out = []
    for place, n in fold.places:
        if fold.kind == "programs":
            out.append(f"{place} {_TIMES}{n}" if n > 1 else place)
        else:
            out.append(f"{_elide(place, 48)} ({n})" if n > 1 else _elide(place, 48))
    return [_visible(p) for p in out]


def _fold_count(fold: Fold) -> str:
    text = f"{fold.distinct} {fold.unit if fold.distinct != 1 else fold.unit.rstrip('s')}"
    if fold.kind == "programs":
        return f"{fold.events} started" if fold.events != fold.distinct else f"{fold.events}"
    return text


def _allowed_line(s: Summary, d: Digest) -> str:
    """The folded block's title: the allowed counts."""
    if not d.folds:
        return "allowed: nothing else"
    kinds = {f.kind: f for f in d.folds}
    parts = []
    if "programs" in kinds:
        parts.append(f"{s.execs} program{'s' if s.execs != 1 else ''} started")
    for kind, fold in kinds.items():
        if kind != "programs":
            unit = fold.unit if fold.distinct != 1 else fold.unit.rstrip("s")
            parts.append(f"{kind}: {fold.distinct} {unit}")
    return "allowed: " + ", ".join(parts)


def _findings_shown(d: Digest) -> tuple[list[Finding], int]:
    shown = d.findings[:MAX_FINDINGS]
    return shown, len(d.findings) - len(shown)


def _full_table_text(events: Sequence[Event]) -> list[str]:
    rows = [_row(event) for event in events]
    widths = [
        max(_width(name), *(_width(row[i]) for row in rows)) for i, name in enumerate(_COLUMNS)
    ]
    marks = ["!" if is_denial(event) else " " for event in events]
    lines = []
    for mark, cells in [(" ", _COLUMNS), *zip(marks, rows, strict=True)]:
        padded = "  ".join(_pad(text, w) for text, w in zip(cells, widths, strict=True))
        lines.append(f"{mark} {padded}".rstrip())
    return lines


def render_text(
    events: Sequence[Event],
    *,
    dropped: int = 0,
    detail: bool = True,
    cell: Cell = None,
    log: LogRef | None = None,
) -> str:
    """The summary line; each denied (``!``) or flagged (``~``) operation,
    grouped; the allowed ones folded, one line per kind; where the full list
    is; and with ``detail`` the full list, a fixed-width table whose denied
    rows start with ``!`` and show their decision in capitals (``DENY``)."""
    s = summarize(events, dropped)
    d = digest(events, None if log is None else log.programs)
    lines = [summary_line(s)]
    shown, more = _findings_shown(d)
    lines += [_finding_text(f) for f in shown]
    if more:
        lines.append(f"  ... and {more} more kinds of denied or flagged operation (in the log)")
    if d.events:
        lines.append(_allowed_line(s, d))
        width = max((len(f.kind) for f in d.folds), default=0)
        for fold in d.folds:
            places = ", ".join(_fold_places(fold)) + (f", {fold.more} more" if fold.more else "")
            lines.append(f"  {fold.kind:<{width}}  {_fold_count(fold)}: {places}")
    ref = _reference(d, cell, log)
    if ref:
        lines.append(_visible(ref))
    if detail and events:
        lines += _full_table_text(events)
    return "\n".join(lines)


# Inline attributes, because JupyterLab right-aligns and vertically centres
# table cells and centres tables: ``style`` wins over its CSS (and its
# sanitizer keeps text-align, vertical-align, margin and overflow-wrap),
# ``align``/``valign`` are what GitHub's sanitizer keeps. No class, no
# <style>: nothing else is needed to read it.
_TABLE: Final = '<table style="margin-left:0;margin-right:auto">'
_TD: Final = ' align="left" style="text-align:left;vertical-align:top" valign="top"'
_WRAP: Final = ' style="overflow-wrap:anywhere"'


def _td(content: str, header: bool = False) -> str:
    tag = "th" if header else "td"
    return f"<{tag}{_TD}>{content}</{tag}>"


def _code(text: str, width: int = WHAT_WIDTH) -> str:
    """``text`` as <code>, elided in the middle past ``width`` with the whole
    value in its title."""
    full = _visible(text)
    shown = _elide(full, width)
    title = f' title="{html.escape(full)}"' if shown != full else ""
    return f"<code{title}{_WRAP}>{html.escape(shown)}</code>"


def _summary_html(s: Summary) -> str:
    parts = []
    for text, alarming in summary_parts(s):
        escaped = html.escape(text)
        parts.append(f"<strong>{escaped}</strong>" if alarming else escaped)
    return "<p><strong>agentsh:</strong> " + " · ".join(parts) + "</p>"


def _findings_html(d: Digest) -> list[str]:
    shown, more = _findings_shown(d)
    if not shown:
        return []
    out = [_TABLE, "<tbody>"]
    for f in shown:
        times = f"{f.count}{_TIMES} " if f.count > 1 else ""
        what = f"{times}{html.escape(f.operation)} {_code(f.what) if f.what else ''}".rstrip()
        # Words, not an emoji: a browser without an emoji font shows a box.
        mark = "<strong>DENIED</strong>" if f.denied else "flagged"
        why = html.escape(_visible(f.why))
        rule = f"<code>{html.escape(_visible(f.rule))}</code>" if f.rule else ""
        reason = f"{rule}: {why}" if rule and why else rule or why
        # "sh (pid 12)" kept on one line: no-break spaces
        process = html.escape(_visible(f.process_text())).replace(" (pid ", "\u00a0(pid\u00a0")
        cells = [mark, f"<strong>{what}</strong>" if f.denied else what, reason, process]
        out.append("<tr>" + "".join(_td(c) for c in cells) + "</tr>")
    out.append("</tbody></table>")
    if more:
        out.append(f"<p>... and {more} more kinds of denied or flagged operation (in the log)</p>")
    return out


def _folds_html(s: Summary, d: Digest) -> list[str]:
    if not d.folds:  # nothing to unfold
        return [f"<p>{html.escape(_allowed_line(s, d))}</p>"]
    out = [f"<details><summary>{html.escape(_allowed_line(s, d))}</summary>"]
    if d.folds:
        out.append(_TABLE + "<tbody>")
        for fold in d.folds:
            places = ", ".join(
                f"<code{_WRAP}>{html.escape(p)}</code>" for p in _fold_places(fold)
            ) + (f", {fold.more} more" if fold.more else "")
            cells = [html.escape(fold.kind), html.escape(_fold_count(fold)), places]
            out.append("<tr>" + "".join(_td(c) for c in cells) + "</tr>")
        out.append("</tbody></table>")
    out.append("</details>")
    return out


def _full_table_html(events: Sequence[Event]) -> list[str]:
    """Every event, folded: the fixed-width table of the text form in a
    <pre> (a <table> of a few hundred rows weighs three times as much in
    the notebook, and a <pre> is never right-aligned)."""
    table = html.escape("\n".join(_full_table_text(events)))
    return [f"<details><summary>every event ({len(events)})</summary>", f"<pre>{table}</pre>",
            "</details>"]  # fmt: skip


def render_html(
    events: Sequence[Event],
    *,
    dropped: int = 0,
    detail: bool = True,
    cell: Cell = None,
    log: LogRef | None = None,
) -> str:
    """Plain HTML: no script, no class, no <style>; the inline alignment
    attributes only.

    Denied rows stand out by content alone: a leading ``DENIED`` (``flagged``
    for an operation let through but shown) and the operation in ``<strong>``.
    """
    s = summarize(events, dropped)
    d = digest(events, None if log is None else log.programs)
    out = [_summary_html(s), *_findings_html(d)]
    if d.events:
        out += _folds_html(s, d)
    if detail and events:
        out += _full_table_html(events)
    ref = _reference(d, cell, log)
    if ref:
        out.append(f"<p><small>{html.escape(_visible(ref))}</small></p>")
    return "\n".join(out)


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"denied": f.denied, "operation": f.operation, "what": f.what, "rule": f.rule,
            "why": f.why, "count": f.count, "processes": f.processes,
            "first_seq": f.first_seq}  # fmt: skip


def render_json(
    events: Sequence[Event],
    *,
    cell: Cell = None,
    dropped: int = 0,
    detail: bool = True,
    log: LogRef | None = None,
) -> dict[str, Any]:
    """The ``application/vnd.agentsh.audit+json`` representation: the counts,
    the grouped findings, the events (every one with ``detail``, else only
    the denied and flagged ones: ``events_kept`` says which) and where the
    whole list is in the log."""
    d = digest(events, None if log is None else log.programs)
    return {
        "version": AUDIT_JSON_VERSION,
        "cell": cell,
        "summary": asdict(summarize(events, dropped)),
        "findings": [_finding_json(f) for f in d.findings],
        "events_kept": "all" if detail else "denied and flagged",
        "events": [dict(e) for e in events] if detail else kept_events(events),
        "log": {
            "path": None if log is None else log.path,
            "cell_id": None if log is None else log.cell_id,
            "first_seq": d.first_seq,
            "last_seq": d.last_seq,
            "events": d.events,
        },
    }


def mimebundle(
    events: Sequence[Event],
    *,
    cell: Cell = None,
    dropped: int = 0,
    detail: bool = True,
    log: LogRef | None = None,
) -> dict[str, Any]:
    """All three representations, ready for IPython's ``display(..., raw=True)``."""
    return {
        "text/plain": render_text(events, dropped=dropped, detail=detail, cell=cell, log=log),
        "text/html": render_html(events, dropped=dropped, detail=detail, cell=cell, log=log),
        AUDIT_MIME: render_json(events, cell=cell, dropped=dropped, detail=detail, log=log),
    }
