"""A refused syscall is audited whoever refused it (issue 19 item 3).

In a container the engine's filter comes before ours and the kernel keeps
the strongest answer: its ERRNO outranks USER_NOTIF and TRACE, so a call
it refuses would never reach the supervisor. Our filter traps refusals
with SECCOMP_RET_TRAP, which outranks ERRNO; the tracer answers the SIGSYS.
Here run_blocked.py's filter stands for Docker's profile (EPERM for mount,
open_by_handle_at, process_vm_readv, unshare, pidfd_getfd), under the whole
supervisor as an engine's would be (notify mode uses its stand-ins there)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agentsh_ipy._linux import arch
from tests.conftest import Area, Run, User, linux_only, read_audit, run_cli, write_policy
from tests.integration.test_blocked_host import blocked, x86_only

pytestmark = [linux_only]

CALLS = ("mount", "open_by_handle_at", "process_vm_readv", "unshare", "pidfd_getfd")
CLONE_NEWNS = 0x20000

PROGRAM = """
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
for name, nr, args in {calls!r}:
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in args])
    e = ctypes.get_errno() if r == -1 else 0
    print(name, errno.errorcode.get(e, e) if e else r, flush=True)
"""


def program(area: Area) -> list[str]:
    a = arch.current()
    calls = []
    for name in CALLS:
        nr = a.nr(name)
        assert nr is not None
        args = (CLONE_NEWNS,) if name == "unshare" else (0,) * 5
        calls.append((name, nr, args))
    path = area.write("ws/calls.py", PROGRAM.format(calls=calls))
    return [sys.executable, str(path)]


# What the outer filter refuses: each call, unshare whatever its flags (as
# Docker without CAP_SYS_ADMIN).
OUTER = ",".join(CALLS)


def check(r: Run) -> None:
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == [f"{n} EPERM" for n in CALLS], (r.stdout, r.stderr)
    events = r.of_type("syscall_blocked")
    assert sorted(e["syscall"] for e in events) == sorted(CALLS), events
    for e in events:
        assert e["decision"] == "deny" and e["rule"] == "seccomp-blocklist", e
        assert e["op"] == e["syscall"] and e["errno"] == "EPERM", e
    [unshare] = [e for e in events if e["syscall"] == "unshare"]
    assert unshare["namespaces"] == ["CLONE_NEWNS"], unshare


def test_the_outer_filter_refuses_each_call_itself(user: User, area: Area) -> None:
    # The premise: without the sandbox, the stand-in for Docker's profile
    # answers EPERM to each (some would not fail so otherwise, as root).
    launcher = area.root / "run_blocked.py"  # a copy uid 65534 may read
    shutil.copy(Path(__file__).with_name("run_blocked.py"), launcher)
    argv = [sys.executable, str(launcher), OUTER, "--", *program(area)]
    p = subprocess.run(user.cmd(argv), capture_output=True, text=True, timeout=60)
    assert p.stdout.split("\n")[:-1] == [f"{n} EPERM" for n in CALLS], (p.stdout, p.stderr)


def _args(area: Area, mode: str) -> list[str]:
    policy = write_policy(area)
    return ["exec", "--mode", mode, "--workspace", str(area.ws), "--audit", str(area.audit),
            "--policy", str(policy), "--", *program(area)]  # fmt: skip


@x86_only
@pytest.mark.parametrize("mode", ["notify", "ptrace"])
def test_refused_under_a_container_filter_is_still_audited(
    user: User, area: Area, mode: str
) -> None:
    check(blocked(area, OUTER, _args(area, mode)))


@x86_only
@pytest.mark.parametrize("mode", ["notify", "ptrace"])
def test_refused_on_an_ordinary_host_is_audited_the_same(user: User, area: Area, mode: str) -> None:
    r = run_cli(area, _args(area, mode))
    check(r)
    assert r.events == read_audit(area.audit)


OWN_SIGSYS = """
import ctypes, os, signal, struct
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
got = []
signal.signal(signal.SIGSYS, lambda s, f: got.append(s))
os.kill(os.getpid(), signal.SIGSYS)
# One claiming to come from seccomp (si_code SYS_SECCOMP, a refused call):
# a process may queue any si_code to itself.
info = ctypes.create_string_buffer(struct.pack("<iii4xQiI", 31, 1, 1, 0, {mount}, {arch}), 128)
r = libc.syscall(ctypes.c_long({sigqueue}), os.getpid(), 31, info)
print("queued", r, "handled", len(got), flush=True)
r = libc.syscall(ctypes.c_long({mount}), 0, 0, 0, 0, 0)
print("mount", r, ctypes.get_errno(), "handled", len(got), flush=True)
"""


@x86_only
@pytest.mark.parametrize("mode", ["notify", "ptrace"])
def test_the_programs_own_sigsys_is_delivered(user: User, area: Area, mode: str) -> None:
    """Only the filter's SIGSYS is taken: one the program sends itself,
    even forging si_code SYS_SECCOMP, reaches its handler, unaudited."""
    a = arch.current()
    text = OWN_SIGSYS.format(
        mount=a.nr("mount"), arch=a.audit_arch, sigqueue=a.nr("rt_sigqueueinfo")
    )
    path = area.write("ws/own.py", text)
    args = _args(area, mode)
    r = run_cli(area, [*args[: args.index("--") + 1], sys.executable, str(path)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == ["queued 0 handled 2", "mount -1 1 handled 2"], r.stdout
    assert [e["syscall"] for e in r.of_type("syscall_blocked")] == ["mount"], r.events
