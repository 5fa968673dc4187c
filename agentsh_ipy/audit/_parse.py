"""Strict reader for the JSON Lines audit log."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from ._events import Event


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A line with two "decision" keys would be read as whichever came last;
    # in an audit record that ambiguity is a forgery vector, so refuse it.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def parse_jsonl(text: str) -> list[Event]:
    """Parse an audit log: one JSON object per line.

    Strict: every line must be a JSON object (no blank lines, no NaN or
    Infinity, no duplicate keys); the first bad line raises ValueError naming
    its 1-based line number. Only ``\\n`` separates lines (with an optional
    ``\\r`` before it), so a U+2028 inside a string is never a line break. A
    single trailing newline is expected and allowed; a last line without one
    (a truncated write) is still parsed, and fails if incomplete.
    """
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    events: list[Event] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            raise ValueError(f"line {number}: empty line")
        try:
            value = json.loads(
                line, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
            )
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"line {number}: invalid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError(f"line {number}: expected a JSON object, got {type(value).__name__}")
        events.append(value)
    return events
