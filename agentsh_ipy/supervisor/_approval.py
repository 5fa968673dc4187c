"""Approvals: ask a person, deny when nobody can be asked or nobody answers."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Approver(Protocol):
    def ask(self, question: str, timeout: float) -> tuple[bool, str]:
        """(granted, how it was decided: words for the audit)."""
        ...


class NoApprover:
    """Headless: nobody to ask, so the answer is no."""

    def ask(self, question: str, timeout: float) -> tuple[bool, str]:
        return False, "denied: no approver available (no controlling terminal)"


class TerminalApprover:
    """Asks on the controlling terminal, one question at a time."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()

    @classmethod
    def open(cls) -> Approver:
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return NoApprover()
        return cls(fd)

    def ask(self, question: str, timeout: float) -> tuple[bool, str]:
        with self.lock:
            os.write(self.fd, f"\nagentsh: {question}\nallow? [y/N] ({timeout:g}s) ".encode())
            deadline = time.monotonic() + timeout
            line = b""
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                    os.write(self.fd, b"\nagentsh: no answer, denied\n")
                    return False, f"denied: no answer within {timeout:g}s"
                chunk = os.read(self.fd, 64)
                if not chunk:
                    return False, "denied: terminal closed"
                line += chunk
            granted = line.strip().lower() in (b"y", b"yes")
            return granted, "granted on the terminal" if granted else "denied on the terminal"


def ask_async(
    approver: Approver, question: str, timeout: float, done: Callable[[bool, str], None]
) -> None:
    """Ask on a thread of its own; a person thinking must not stall the loop."""

    def run() -> None:
        try:
            granted, how = approver.ask(question, timeout)
        except OSError as e:
            granted, how = False, f"denied: approver failed ({e.strerror})"
        done(granted, how)

    try:
        threading.Thread(target=run, name="agentsh-approval", daemon=True).start()
    except RuntimeError:
        # The sandbox may have spent the process limit it shares with us:
        # nobody can be asked, so the answer is no (never an unanswered call).
        done(False, "denied: the supervisor could not start a thread to ask")
