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


def test_same_vm_tells_shared_apart_from_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from agentsh_ipy._linux import ptracer
    from agentsh_ipy.supervisor import _tracer

    child = subprocess.Popen(["sleep", "30"])
    try:
        assert ptracer.same_vm(os.getpid(), os.getpid())
        assert not ptracer.same_vm(os.getpid(), child.pid)
    finally:
        child.kill()
        child.wait()
    assert not ptracer.same_vm(os.getpid(), child.pid)  # gone: nothing to hold

    # A host that refuses kcmp: every other process counts as sharing (held),
    # never silently as not sharing.
    def refused(_a: int, _b: int) -> bool:
        raise PermissionError(errno.EPERM, "kcmp: Operation not permitted")

    monkeypatch.setattr(ptracer, "same_vm", refused)
    assert _tracer._may_share_vm(1, 2)
