"""Audit: the event model, the JSON Lines log, the per-cell store and the renderers.

Pure: no os, no sockets, no IPython, no file opening. The caller injects the
output stream and the clock.

The renderers and the summary load on first use: a command-line run that
only writes the log does not pay for them at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._events import EVENT_TYPES, FIELD_ORDER, AuditLog, Event, dumps_event, format_ts
from ._parse import parse_jsonl
from ._store import EventStore

if TYPE_CHECKING:
    from ._digest import Digest, digest, is_flagged, note_program
    from ._render import AUDIT_MIME, LogRef, mimebundle, render_html, render_json, render_text
    from ._summary import Summary, is_denial, summarize, summary_line, target

_LAZY = {
    **dict.fromkeys(
        ("AUDIT_MIME", "LogRef", "mimebundle", "render_html", "render_json", "render_text"),
        "_render",
    ),
    **dict.fromkeys(("Digest", "digest", "is_flagged", "note_program"), "_digest"),
    **dict.fromkeys(("Summary", "is_denial", "summarize", "summary_line", "target"), "_summary"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AUDIT_MIME",
    "EVENT_TYPES",
    "FIELD_ORDER",
    "AuditLog",
    "Digest",
    "Event",
    "EventStore",
    "LogRef",
    "Summary",
    "digest",
    "dumps_event",
    "format_ts",
    "is_denial",
    "is_flagged",
    "mimebundle",
    "note_program",
    "parse_jsonl",
    "render_html",
    "render_json",
    "render_text",
    "summarize",
    "summary_line",
    "target",
]
