"""The wrapper's handshake read: bounded on a raw fd, EINTR-safe, strict."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from agentsh_ipy._linux import wrapper
from tests.conftest import linux_only

pytestmark = linux_only


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    yield a, b
    a.close()
    b.close()


def test_wait_byte_survives_eintr(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    hits = []
    old = signal.signal(signal.SIGALRM, lambda *_: hits.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)  # interrupt the poll again and again
    threading.Timer(0.5, lambda: b.send(b"G")).start()
    try:
        wrapper.wait_byte(a.fileno(), b"G", 5.0, "GO")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert len(hits) >= 5  # the read really was interrupted


def test_wait_byte_rejects_a_wrong_byte(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.send(b"X")
    with pytest.raises(wrapper.SetupError, match="bad GO message"):
        wrapper.wait_byte(a.fileno(), b"G", 5.0, "GO")


def test_wait_byte_bound_works_on_a_raw_fd(pair: tuple[socket.socket, socket.socket]) -> None:
    a, _b = pair
    start = time.monotonic()
    with pytest.raises(wrapper.SetupError, match=r"no GO from the supervisor within 0.3s"):
        wrapper.wait_byte(a.fileno(), b"G", 0.3, "GO")
    assert 0.3 <= time.monotonic() - start < 2.0


def test_wait_byte_reports_a_closed_peer(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.close()
    with pytest.raises(wrapper.SetupError, match="closed the channel"):
        wrapper.wait_byte(a.fileno(), b"G", 5.0, "GO")


def test_resolve_searches_path_and_reports_missing(tmp_path: os.PathLike[str]) -> None:
    assert wrapper.resolve("sh", "/nonexistent:/bin:/usr/bin") in ("/bin/sh", "/usr/bin/sh")
    assert wrapper.resolve("no-such-cmd-xyz", "/bin:/usr/bin") is None
    assert wrapper.resolve("/bin/sh", None) == "/bin/sh"
