"""The survivor check of the escape suite (conftest's autouse fixture) can
fail: a plain, unsandboxed child that leaves a process behind is named,
killed and reaped."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import linux_only
from tests.escape import _survivors

pytestmark = linux_only


def test_a_leaked_process_is_named_killed_and_reaped() -> None:
    with _survivors.watched() as watch:
        # The shell exits at once; its background sleep is orphaned and
        # reparented to this worker (a subreaper meanwhile).
        subprocess.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 &"], check=True)
        leaked = [p for p in _survivors.descendants(os.getpid()) if p not in watch.before]
        assert leaked, "the orphaned sleep was not reparented to this process"
        with pytest.raises(AssertionError, match=rf"{leaked[0]} \(sleep 300\)"):
            watch.check()
    assert not os.path.exists(f"/proc/{leaked[0]}"), "the survivor was not killed and reaped"


def test_nothing_left_passes() -> None:
    with _survivors.watched() as watch:
        subprocess.run(["sh", "-c", "sleep 0 & wait"], check=True)
        watch.check()
