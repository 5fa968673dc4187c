"""The three representations of the per-cell audit display.

``text/plain`` (a fixed-width table), ``text/html`` (a plain table that reads
the same without any CSS, in GitHub's renderer and in nbconvert) and
``application/vnd.agentsh.audit+json`` (the data).

Everything shown comes from the sandboxed side (file names, argv), so it is
hostile input: control and format characters are made visible before display
(a newline or an ANSI escape in a file name could forge table rows in a
terminal, a U+202E could reverse how a name reads), and HTML is escaped.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Final

from ._events import Cell, Event
from ._summary import is_denial, summarize, summary_line, summary_parts, target

AUDIT_MIME: Final = "application/vnd.agentsh.audit+json"
AUDIT_JSON_VERSION: Final = 1
TARGET_WIDTH: Final = 60

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


def render_json(events: Sequence[Event], *, cell: Cell = None, dropped: int = 0) -> dict[str, Any]:
    """The ``application/vnd.agentsh.audit+json`` representation."""
    return {
        "version": AUDIT_JSON_VERSION,
        "cell": cell,
        "summary": asdict(summarize(events, dropped)),
        "events": [dict(event) for event in events],
    }


def render_text(events: Sequence[Event], *, dropped: int = 0, detail: bool = True) -> str:
    """The summary line, then (if ``detail``) a fixed-width table of the events.

    Denied rows start with ``!`` and show their decision in capitals (``DENY``).
    """
    lines = [summary_line(summarize(events, dropped))]
    if detail and events:
        rows = [_row(event) for event in events]
        widths = [
            max(_width(name), *(_width(row[i]) for row in rows)) for i, name in enumerate(_COLUMNS)
        ]
        marks = ["!" if is_denial(event) else " " for event in events]
        for mark, cells in [(" ", _COLUMNS), *zip(marks, rows, strict=True)]:
            padded = "  ".join(_pad(text, w) for text, w in zip(cells, widths, strict=True))
            lines.append(f"{mark} {padded}".rstrip())
    return "\n".join(lines)


def _summary_html(events: Sequence[Event], dropped: int) -> str:
    parts = []
    for text, alarming in summary_parts(summarize(events, dropped)):
        escaped = html.escape(text)
        parts.append(f"<strong>{escaped}</strong>" if alarming else escaped)
    return "<p><strong>agentsh:</strong> " + ", ".join(parts) + "</p>"


def render_html(events: Sequence[Event], *, dropped: int = 0, detail: bool = True) -> str:
    """A plain ``<table>``: no script, no CSS, no classes.

    Denied rows stand out by content alone: a leading ``⛔`` cell and every
    cell in ``<strong>``, with the decision in capitals.
    """
    out = [_summary_html(events, dropped)]
    if detail and events:
        out.append("<table>")
        out.append(
            "<thead><tr><th></th>"
            + "".join(f"<th>{name}</th>" for name in _COLUMNS)
            + "</tr></thead>"
        )
        out.append("<tbody>")
        for event in events:
            denied = is_denial(event)
            cells = []
            for name, text in zip(_COLUMNS, _row(event), strict=True):
                content = html.escape(text)
                if name == "target" and content:
                    full = _visible(target(event))
                    title = f' title="{html.escape(full)}"' if full != text else ""
                    content = f"<code{title}>{content}</code>"
                if denied and content:
                    content = f"<strong>{content}</strong>"
                cells.append(f"<td>{content}</td>")
            mark = "<td>⛔</td>" if denied else "<td></td>"
            out.append("<tr>" + mark + "".join(cells) + "</tr>")
        out.append("</tbody>")
        out.append("</table>")
    return "\n".join(out)


def mimebundle(
    events: Sequence[Event], *, cell: Cell = None, dropped: int = 0, detail: bool = True
) -> dict[str, Any]:
    """All three representations, ready for IPython's ``display(..., raw=True)``."""
    return {
        "text/plain": render_text(events, dropped=dropped, detail=detail),
        "text/html": render_html(events, dropped=dropped, detail=detail),
        AUDIT_MIME: render_json(events, cell=cell, dropped=dropped),
    }
