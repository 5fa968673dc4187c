"""Audit: the event model, the JSON Lines log, the per-cell store and the renderers.

Pure: no os, no sockets, no IPython, no file opening. The caller injects the
output stream and the clock.
"""

from ._events import EVENT_TYPES, FIELD_ORDER, AuditLog, Event, dumps_event, format_ts
from ._parse import parse_jsonl
from ._render import AUDIT_MIME, mimebundle, render_html, render_json, render_text
from ._store import EventStore
from ._summary import Summary, is_denial, summarize, summary_line, target

__all__ = [
    "AUDIT_MIME",
    "EVENT_TYPES",
    "FIELD_ORDER",
    "AuditLog",
    "Event",
    "EventStore",
    "Summary",
    "dumps_event",
    "format_ts",
    "is_denial",
    "mimebundle",
    "parse_jsonl",
    "render_html",
    "render_json",
    "render_text",
    "summarize",
    "summary_line",
    "target",
]
