"""The ptrace plumbing: python-ptrace's register calls fail as OSError with
the errno, so the tracer can tell a task that is gone (ESRCH) from a failure."""

from __future__ import annotations

import errno
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="ptrace is Linux-only here"
)


def test_registers_of_a_task_that_is_gone_raise_esrch() -> None:
    from agentsh_ipy._linux import ptracer

    if not ptracer.ptrace_mode_supported():
        pytest.skip("register access is implemented for x86_64 only")
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: no such task any more (and never traced by us)
    with pytest.raises(OSError) as exc:
        ptracer.SyscallRegs(child.pid)
    assert exc.value.errno == errno.ESRCH
    assert "ptrace_getregs" in str(exc.value)
