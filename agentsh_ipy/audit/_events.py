"""The event model and the JSON Lines audit log.

Pure: the caller injects the stream and the clock. Nothing here opens a file.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, TextIO

Event = dict[str, Any]
"""One audit event: a plain dict holding JSON values only."""

Cell = str | int | None

EVENT_TYPES: Final = (
    "process_start",
    "process_exit",
    "exec",
    "file",
    "net",
    "unix",
    "signal",
    "syscall_blocked",
    "sandbox",
)

FIELD_ORDER: Final = (
    "ts",
    "seq",
    "session",
    "cell",
    "type",
    "op",
    "pid",
    "ppid",
    "path",
    "argv",
    "addr",
    "port",
    "decision",
    "rule",
    "errno",
    "exit_code",
    "signal",
)

# Assigned by AuditLog and never taken from the caller: a caller that could set
# them could forge the order or the origin of an event.
_RESERVED: Final = frozenset({"ts", "seq", "session", "type"})

# json.dumps(ensure_ascii=False) leaves these raw inside strings. U+0085, U+2028
# and U+2029 are line breaks for str.splitlines() and many other readers, so a
# crafted path could split one event into two lines; lone surrogates (from
# os.fsdecode of undecodable file names) cannot be encoded as UTF-8 at all, so
# the write would fail. The \uXXXX escape is valid JSON and json.loads turns it
# back into the same str. Outside strings json.dumps emits only ASCII, so the
# substitution cannot touch anything but string contents.
_UNSAFE_IN_LINE: Final = re.compile("[\u0085\u2028\u2029\ud800-\udfff]")


def _escape_unsafe(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


# One encoder for every line: json.dumps with options builds a new one per call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def format_ts(seconds: float) -> str:
    """Format a POSIX timestamp as ISO-8601 UTC with microseconds and a ``Z``
    (truncated to the microsecond, so a later time never formats earlier)."""
    global _last_second
    whole = int(seconds // 1)
    micros = int((seconds - whole) * 1_000_000)
    cached, text = _last_second  # one tuple: threads see both or neither
    if cached != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, text)
    return f"{text}.{micros:06d}Z"


def order_fields(event: Event) -> Event:
    """Return a copy of ``event`` with keys in FIELD_ORDER, then the rest sorted."""
    ordered: Event = {key: event[key] for key in FIELD_ORDER if key in event}
    for key in sorted(k for k in event if k not in ordered):
        ordered[key] = event[key]
    return ordered


def dumps_event(event: Event) -> str:
    """Serialize one event as a single JSON line (without the newline).

    Keys in FIELD_ORDER then extras sorted. NaN and infinities are refused
    (they are not JSON); a value JSON cannot represent raises TypeError.
    """
    text = _ENCODER.encode(order_fields(event))
    # The characters to escape are all outside ASCII: most lines skip the regex.
    return text if text.isascii() else _UNSAFE_IN_LINE.sub(_escape_unsafe, text)


def _check_cell(cell: object) -> Cell:
    # bool is an int subclass; True as a cell id is a bug, not a cell.
    if (
        cell is None
        or isinstance(cell, str)
        or (isinstance(cell, int) and not isinstance(cell, bool))
    ):
        return cell
    raise TypeError(f"cell must be str, int or None, not {type(cell).__name__}")


class AuditLog:
    """Assigns ts/seq/session/cell and writes one JSON object per line. Thread-safe.

    ``seq`` starts at 1 and is gap-free: it is assigned, the line is written and
    flushed, and subscribers are called, all under one lock, so the order in the
    stream and the order every subscriber sees are both seq order. Because
    subscribers run under that lock they must be quick and must not call
    :meth:`emit` themselves (that raises RuntimeError rather than deadlocking).

    ``stream`` is not owned: :meth:`close` flushes it but never closes it. With
    ``stream=None`` events only go to subscribers.
    """

    def __init__(
        self,
        stream: TextIO | None,
        session: str,
        clock: Callable[[], float],
        *,
        cell: str | int | None = None,
    ) -> None:
        if not isinstance(session, str) or not session:
            raise ValueError("session must be a non-empty string")
        self._stream = stream
        self._session = session
        self._clock = clock
        self._cell: Cell = _check_cell(cell)
        self._seq = 0
        self._closed = False
        self._lock = threading.Lock()
        self._owner: int | None = None  # thread id holding _lock inside emit
        # Copy-on-write tuple: emit reads it without taking _sub_lock, and
        # (un)subscribing from inside a callback cannot deadlock.
        # (token, callback, wants the line rather than the event)
        self._subscribers: tuple[tuple[object, Callable[[Any], None], bool], ...] = ()
        self._sub_lock = threading.Lock()

    @property
    def session(self) -> str:
        return self._session

    @property
    def cell(self) -> Cell:
        return self._cell

    @property
    def count(self) -> int:
        """Number of events emitted so far (equals the last seq)."""
        return self._seq

    @property
    def closed(self) -> bool:
        return self._closed

    def set_cell(self, cell: str | int | None) -> None:
        """Attribute the following events to ``cell`` (None: outside any cell)."""
        checked = _check_cell(cell)
        if self._owner == threading.get_ident():
            # Called from a subscriber: we already hold the lock.
            self._cell = checked
            return
        with self._lock:
            self._cell = checked

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every later event; returns an unsubscribe function.

        The event is decoded from the written line: it holds exactly what the
        log holds and shares no mutable object with the emitter. All
        subscribers get that same dict: treat it as read-only.

        The unsubscribe function is idempotent. Subscribing the same callback
        twice delivers each event twice, and each subscription is removed by its
        own unsubscribe function.
        """
        return self._subscribe(callback, False)

    def subscribe_lines(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Like :meth:`subscribe`, but ``callback(line)`` gets each event's
        JSON line as written (no newline): for a subscriber that passes
        events on as JSON, without decoding and encoding them again."""
        return self._subscribe(callback, True)

    def _subscribe(self, callback: Callable[[Any], None], lines: bool) -> Callable[[], None]:
        token = object()
        with self._sub_lock:
            self._subscribers = (*self._subscribers, (token, callback, lines))

        def unsubscribe() -> None:
            with self._sub_lock:
                self._subscribers = tuple(s for s in self._subscribers if s[0] is not token)

        return unsubscribe

    def emit(self, type: str, **fields: Any) -> None:
        """Record one event and pass it to the subscribers.

        ``fields`` whose value is None are dropped; ``cell`` defaults to the
        current cell and is always present.

        Raises ValueError for an unknown type, a reserved field name, or after
        :meth:`close`; TypeError/ValueError for a value JSON cannot hold (no
        seq is used up then). Errors from writing propagate. If subscribers
        raise, every subscriber still gets the event and the first error is
        raised afterwards (the event is in the log by then).
        """
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown audit event type {type!r}; expected one of {EVENT_TYPES}")
        reserved = _RESERVED.intersection(fields)
        if reserved:
            raise ValueError(f"fields {sorted(reserved)} are assigned by the audit log")
        explicit_cell = "cell" in fields
        cell = _check_cell(fields.pop("cell")) if explicit_cell else None
        extra = {key: value for key, value in fields.items() if value is not None}

        if self._owner == threading.get_ident():
            raise RuntimeError("AuditLog.emit called from an audit subscriber")
        errors: list[BaseException] = []
        with self._lock:
            self._owner = threading.get_ident()
            try:
                if self._closed:
                    raise ValueError("emit on a closed AuditLog")
                seq = self._seq + 1
                # The clock is read under the lock so ts never goes backwards
                # against seq (given a monotonic-enough clock).
                event: Event = {
                    "ts": format_ts(self._clock()),
                    "seq": seq,
                    "session": self._session,
                    "cell": cell if explicit_cell else self._cell,
                    "type": type,
                    **extra,
                }
                # Serialize before taking the seq number: a bad value must not
                # leave a gap.
                line = dumps_event(event)
                self._seq = seq
                if self._stream is not None:
                    self._stream.write(line + "\n")
                    # Flush per event: a run that ends abnormally loses nothing.
                    self._stream.flush()
                written: Event | None = None  # decoded once, if an event subscriber wants it
                for _token, callback, as_line in self._subscribers:
                    try:
                        if as_line:
                            callback(line)
                        else:
                            if written is None:
                                written = json.loads(line)
                            callback(written)
                    except Exception as exc:
                        errors.append(exc)
            finally:
                self._owner = None
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Flush the stream and refuse further events. Does not close the stream."""
        if self._owner == threading.get_ident():
            self._close_locked()  # called from a subscriber: the lock is ours
            return
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stream is not None:
            self._stream.flush()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
