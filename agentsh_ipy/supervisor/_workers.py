"""A small pool of threads for jobs that may block.

Not concurrent.futures.ThreadPoolExecutor: its workers are joined at
interpreter exit (a connect blocked for minutes would hold the
supervisor's exit), it caps its threads (blocked jobs would then hold
others), and an exception in a job stays in a future nobody reads.
"""

from __future__ import annotations

import errno
import queue
import threading
from collections.abc import Callable


class Workers:
    """Threads for jobs that may block (a connect, a launch's handshake): an
    idle one takes the job, else a new one starts, so a blocked job never
    waits for another and a run of quick ones reuses a few threads instead
    of starting one each (a thread start is a round trip with the new
    thread). A worker idle for ``idle`` seconds ends; :meth:`close` ends
    them all."""

    def __init__(self, name: str = "agentsh-answer", idle: float = 2.0) -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # workers waiting for a job, or about to
        self._live = 0
        self._timeout = idle

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._jobs.put(job)
                return
            self._live += 1
        try:
            threading.Thread(target=self._work, args=(job,), name=self._name, daemon=True).start()
        except RuntimeError as e:
            # No thread to be had: the user's process limit, which the sandbox
            # shares, is spent. The caller answers without one (OSError).
            with self._lock:
                self._live -= 1
            raise OSError(errno.EAGAIN, f"no thread for the job ({e})") from None

    def _work(self, job: Callable[[], None] | None) -> None:
        try:
            while job is not None:
                job()
                with self._lock:
                    self._idle += 1
                try:
                    job = self._jobs.get(timeout=self._timeout)
                except queue.Empty:
                    with self._lock:
                        # A submit may have counted on us just before the timeout.
                        try:
                            job = self._jobs.get_nowait()
                        except queue.Empty:
                            self._idle -= 1
                            job = None
        finally:
            with self._lock:
                self._live -= 1

    def close(self) -> None:
        with self._lock:
            for _ in range(self._live):
                self._jobs.put(None)
