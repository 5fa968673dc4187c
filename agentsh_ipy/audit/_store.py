"""A bounded in-memory event store, grouped by cell (the per-cell audit)."""

from __future__ import annotations

import threading

from ._events import Cell, Event
from ._summary import is_denial


class EventStore:
    """Bounded in-memory store, grouped by cell. Thread-safe.

    ``add`` can be passed to :meth:`AuditLog.subscribe`. A cell keeps at most
    ``max_events_per_cell`` events; later ones are counted in :meth:`dropped`
    (and so reported by ``summarize``), never lost silently. Denials are
    kept past that bound (up to as many again): a flood of allowed events
    must not push a denial out of the cell's audit. At most
    ``max_cells`` cells are kept; adding a new cell beyond that evicts the
    oldest one (first inserted) and counts it in :attr:`evicted_cells`.
    """

    def __init__(self, max_events_per_cell: int = 10_000, max_cells: int = 200) -> None:
        if max_events_per_cell < 1:
            raise ValueError("max_events_per_cell must be at least 1")
        if max_cells < 1:
            raise ValueError("max_cells must be at least 1")
        self._max_events = max_events_per_cell
        self._max_cells = max_cells
        self._lock = threading.Lock()
        # dicts keep insertion order: the first key is the oldest cell.
        self._events: dict[Cell, list[Event]] = {}
        self._dropped: dict[Cell, int] = {}
        self._evicted = 0

    def add(self, event: Event) -> None:
        """Store ``event`` under its ``cell`` field (None when absent)."""
        cell = event.get("cell")
        with self._lock:
            bucket = self._events.get(cell)
            if bucket is None:
                while len(self._events) >= self._max_cells:
                    oldest = next(iter(self._events))
                    del self._events[oldest]
                    self._dropped.pop(oldest, None)
                    self._evicted += 1
                bucket = self._events[cell] = []
            full = len(bucket) >= self._max_events
            if full and (not is_denial(event) or len(bucket) >= 2 * self._max_events):
                self._dropped[cell] = self._dropped.get(cell, 0) + 1
            else:
                bucket.append(event)

    def __call__(self, event: Event) -> None:
        self.add(event)

    def events(self, cell: Cell) -> list[Event]:
        """The stored events of ``cell`` (a copy of the list; [] for an unknown cell)."""
        with self._lock:
            return list(self._events.get(cell, ()))

    def dropped(self, cell: Cell) -> int:
        """How many events of ``cell`` did not fit."""
        with self._lock:
            return self._dropped.get(cell, 0)

    def cells(self) -> list[Cell]:
        """Known cells, oldest first."""
        with self._lock:
            return list(self._events)

    def clear(self, cell: Cell) -> None:
        """Forget ``cell`` (its events and its dropped count)."""
        with self._lock:
            self._events.pop(cell, None)
            self._dropped.pop(cell, None)

    @property
    def evicted_cells(self) -> int:
        """How many whole cells were evicted to stay within ``max_cells``."""
        with self._lock:
            return self._evicted
