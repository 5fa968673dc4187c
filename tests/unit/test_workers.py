"""The supervisor's worker threads for jobs that may block (connects, handshakes)."""

from __future__ import annotations

import errno
import threading
from typing import Any

import pytest

from agentsh_ipy import policy as pol
from agentsh_ipy.supervisor._approval import NoApprover, ask_async
from agentsh_ipy.supervisor._request import UNSERVED_RULE, Request, unserved
from agentsh_ipy.supervisor._workers import Workers


def test_a_blocked_job_does_not_hold_the_next_one() -> None:
    workers = Workers()
    release, second_ran = threading.Event(), threading.Event()
    workers.submit(lambda: release.wait(10))
    workers.submit(second_ran.set)
    try:
        assert second_ran.wait(5), "the second job waited for the blocked first one"
    finally:
        release.set()
        workers.close()


def test_an_idle_worker_takes_the_next_job() -> None:
    workers = Workers(idle=30)
    seen: list[int] = []
    for _ in range(20):
        done = threading.Event()

        def job(done: threading.Event = done) -> None:
            seen.append(threading.get_ident())
            done.set()

        workers.submit(job)
        assert done.wait(5)
        # Let the worker go back to waiting before the next submit.
        for _ in range(500):
            if workers._idle:
                break
            threading.Event().wait(0.002)
    # Workers idle for 30 s stay alive, so a thread per job would show
    # as 20 different idents.
    assert len(seen) == 20
    assert len(set(seen)) == 1, "sequential jobs each started a thread"
    workers.close()


def test_close_ends_idle_workers_and_idle_ones_time_out() -> None:
    workers = Workers(idle=0.05)
    done = threading.Event()
    workers.submit(done.set)
    assert done.wait(5)
    for _ in range(500):
        if workers._live == 0:
            break
        threading.Event().wait(0.01)
    assert workers._live == 0, "an idle worker outlived its timeout"

    kept = Workers(idle=60)
    ran = threading.Event()
    kept.submit(ran.set)
    assert ran.wait(5)
    kept.close()
    for _ in range(500):
        if kept._live == 0:
            break
        threading.Event().wait(0.01)
    assert kept._live == 0, "close left a worker running"


def _no_threads(self: threading.Thread) -> None:
    raise RuntimeError("can't start new thread")


def test_no_thread_to_be_had_is_an_oserror_and_no_live_worker(monkeypatch: Any) -> None:
    workers = Workers()
    monkeypatch.setattr(threading.Thread, "start", _no_threads)
    with pytest.raises(OSError) as e:
        workers.submit(lambda: None)
    assert e.value.errno == errno.EAGAIN
    assert workers._live == 0  # nothing counted that never ran


def test_an_approval_without_a_thread_is_denied_not_left_waiting(monkeypatch: Any) -> None:
    answers: list[tuple[bool, str]] = []
    monkeypatch.setattr(threading.Thread, "start", _no_threads)
    ask_async(NoApprover(), "allow?", 5, lambda granted, how: answers.append((granted, how)))
    assert answers == [(False, "denied: the supervisor could not start a thread to ask")]


def test_an_action_that_cannot_be_carried_out_becomes_an_audited_denial() -> None:
    req = Request("net", "connect", "connect", 1, 1, pol.Decision("allow", "lo"))
    assert unserved(req, OSError(errno.EAGAIN, "no thread")) == errno.EAGAIN
    assert (req.decision.decision, req.decision.rule) == ("deny", UNSERVED_RULE)
    assert (req.fields["result"], req.errno, req.quiet) == ("EAGAIN", errno.EAGAIN, False)
    other = Request("file", "write", "rename", 1, 1, pol.Decision("allow", "ws"))
    assert unserved(other, ValueError("a bug")) == errno.EAGAIN
    assert "a bug" in other.decision.message
